"""Read a Litestream replica as a live, read-only SQLite database through APSW.

Importing this package registers the APSW VFS named ``litestream``::

    import apsw, litestream_vfs
    db = apsw.Connection("file:chinook.db?vfs=litestream&replica=s3://bucket/chinook.db",
                         flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
"""

from __future__ import annotations

from .distribution import NAME as __distribution__, refuse_go_wheel

refuse_go_wheel()  # before anything else: Litestream's Go VFS wheel shares our import name

from typing import Mapping

from .changes import Change, change_log as changes, diff
from .errors import (ChecksumMismatch, LitestreamVFSError, LTXError, ObjectNotFound, OutOfHistory,
                     ReplicaError, StorageError, TimeParseError)
from .process import PROCESS
from .connect import connect
from .notebook import attach, read_sql
from .sql import install_hook
from .vfs import VFS_NAME, ensure_registered, file_of

__all__ = [
    "VFS_NAME", "register", "connect", "read_sql", "attach", "file_of", "stats", "reset_stats", "changes", "diff", "Change",
    "LitestreamVFSError", "LTXError", "ChecksumMismatch", "StorageError", "ObjectNotFound",
    "ReplicaError", "OutOfHistory", "TimeParseError",
]


def register(replicas: Mapping[str, str] | None = None, *, cache_size: int | None = None,
             poll_interval: float | None = None, cache_dir: str | None = None,
             disk_cache_size: int | None = None, hydrate_dir: str | None = None) -> str:
    """Configure the process-wide VFS and return its name.

    replicas: file name (as given to apsw.Connection, or its base name) -> replica URL.
    cache_size: bytes of decoded pages kept in memory, shared by all connections.
    poll_interval: seconds between looks for new transactions while a connection follows latest.
    cache_dir: directory of a persistent page/index cache shared by processes ("" turns it off);
        a connection's `cache_dir=` URI parameter overrides it.
    disk_cache_size: bytes the persistent cache may use before evicting its oldest frames.
    hydrate_dir: keep a local SQLite copy of every replica opened in this directory, built in
        the background (see litestream_vfs.hydrate; "" turns it off; `hydrate=PATH|off` overrides).
    """
    PROCESS.configure(replicas=replicas, cache_bytes=cache_size, poll_seconds=poll_interval,
                      cache_dir=cache_dir, disk_bytes=disk_cache_size, hydrate_dir=hydrate_dir)
    ensure_registered()
    return VFS_NAME


def stats() -> dict[str, float]:
    """Process-wide counters: lists, gets, bytes_fetched, network_seconds, cache_hits/misses, pages_decoded."""
    return PROCESS.totals()


def reset_stats() -> None:
    PROCESS.reset_counters()


ensure_registered()
install_hook()
