"""Exceptions: every one names the thing at fault (file, URL, time string)."""

from __future__ import annotations

import sys

from .distribution import refuse_foreign_package

# Every module imports this one: if another distribution's __init__ (Litestream's Go VFS wheel) stands
# where ours should, say so here rather than fail later with a puzzling AttributeError.
refuse_foreign_package(sys.modules.get(__package__))


class LitestreamVFSError(Exception):
    """Base class for every error this package raises on purpose."""


class LTXError(LitestreamVFSError):
    """An LTX file is truncated, corrupt or not an LTX file at all."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


class ChecksumMismatch(LTXError):
    """The file checksum in the trailer does not match the file's contents."""


class StorageError(LitestreamVFSError):
    """The replica store could not be read (network, permissions, throttling)."""


class ObjectNotFound(StorageError):
    """An object the plan relies on is gone (often: removed by compaction)."""


class ReplicaError(LitestreamVFSError):
    """The replica URL is bad, the replica is missing or has no usable state."""


class OutOfHistory(ReplicaError):
    """A requested time or TXID is not among the replica's retained states."""


class TimeParseError(LitestreamVFSError):
    """A time string could not be understood."""


class StaleReplica(ReplicaError):
    """A connection with `max_lag` follows a replica whose newest state (or last good poll) is too old."""
