"""Read a Litestream replica as a live, read-only SQLite database through APSW.

Importing this package registers the APSW VFS named ``litestream``::

    import apsw, litestream_vfs
    db = apsw.Connection("file:chinook.db?vfs=litestream&replica=s3://bucket/chinook.db",
                         flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
"""

from __future__ import annotations

from .distribution import NAME as __distribution__, missing_attribute, refuse_go_wheel

refuse_go_wheel()  # before anything else: Litestream's Go VFS wheel shares our import name

import importlib
import sys
import types
from typing import Any, Mapping

from .errors import (ChecksumMismatch, LitestreamVFSError, LTXError, ObjectNotFound, OutOfHistory,
                     ReplicaError, StaleReplica, StorageError, TimeParseError)
from .sql import install_hook
from .vfs import VFS_NAME, ensure_registered, file_of

#: Public names loaded on first use (PEP 562), so `import litestream_vfs` costs only the
#: VFS registration: name -> (module of this package, attribute). Add new public names here.
LAZY: dict[str, tuple[str, str]] = {
    "connect": ("connect", "connect"),
    "read_sql": ("notebook", "read_sql"),
    "attach": ("notebook", "attach"),
    "changes": ("changes", "change_log"),
    "diff": ("rowdiff", "diff"),
    "Change": ("changes", "Change"),
    "arrow": ("arrowio", "arrow"),
    "arrow_batches": ("arrowio", "arrow_batches"),
    "dbapi": ("dbapi", ""),  # "": the submodule itself
    "aio": ("aio", ""),
    "fleet": ("fleet_query", "fleet"),
    "FleetResult": ("fleet_query", "FleetResult"),
    "blame": ("row_history", "blame"),
    "RowVersion": ("row_history", "RowVersion"),
    "bisect": ("change_point", "bisect"),
    "ChangePoint": ("change_point", "ChangePoint"),
}

__all__ = [
    "VFS_NAME", "register", "close", "file_of", "stats", "reset_stats", *LAZY,
    "LitestreamVFSError", "LTXError", "ChecksumMismatch", "StorageError", "ObjectNotFound",
    "ReplicaError", "OutOfHistory", "StaleReplica", "TimeParseError",
]


def __getattr__(name: str) -> Any:
    """Load a public name from LAZY on first use."""
    if name not in LAZY:
        raise missing_attribute(name)
    module, attribute = LAZY[name]
    value = importlib.import_module(f"{__name__}.{module}")
    value = getattr(value, attribute) if attribute else value
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY))


class _Package(types.ModuleType):
    """Loading a submodule binds it as an attribute of its package; where a public name is
    also a submodule's name (`connect`, `changes`), the public name must win, as when eager."""

    def __setattr__(self, name: str, value: Any) -> None:
        module, attribute = LAZY.get(name, ("", ""))
        if attribute and isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{module}":
            value = getattr(value, attribute)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def register(replicas: Mapping[str, str] | None = None, *, cache_size: int | None = None,
             poll_interval: float | None = None, cache_dir: str | None = None,
             disk_cache_size: int | None = None, hydrate_dir: str | None = None,
             verify: str | None = None, max_lag: float | None = None) -> str:
    """Configure the process-wide VFS and return its name.

    replicas: file name (as given to apsw.Connection, or its base name) -> replica URL.
    cache_size: bytes of decoded pages kept in memory, shared by all connections.
    poll_interval: seconds between looks for new transactions while a connection follows latest.
    cache_dir: directory of a persistent page/index cache shared by processes ("" turns it off);
        a connection's `cache_dir=` URI parameter overrides it.
    disk_cache_size: bytes the persistent cache may use before evicting its oldest frames.
    hydrate_dir: keep a local SQLite copy of every replica opened in this directory, built in
        the background (see litestream_vfs.hydrate; "" turns it off; `hydrate=PATH|off` overrides).
    verify: "auto" (default), "full" or "ranges": when a file's checksum is verified relative to
        serving its pages (see litestream_vfs.verify); a connection's `verify=` URI parameter overrides it.
    max_lag: seconds; a connection following latest fails its next read transaction (StaleReplica)
        when the newest state it can see, or the last successful poll, is older (0 turns it off;
        a connection's `max_lag=` URI parameter overrides it).

    Settings apply to connections opened afterwards; `poll_interval` also to running pollers.
    """
    from .process import PROCESS

    PROCESS.configure(replicas=replicas, cache_bytes=cache_size, poll_seconds=poll_interval,
                      cache_dir=cache_dir, disk_bytes=disk_cache_size, hydrate_dir=hydrate_dir,
                      verify=verify, max_lag=max_lag)
    ensure_registered()
    return VFS_NAME


def stats() -> dict[str, float]:
    """Process-wide counters: lists, gets, bytes_fetched, network_seconds, cache_hits/misses, pages_decoded."""
    from .process import PROCESS

    return PROCESS.totals()


def close() -> None:
    """Stop every background thread (event-loop queries, pollers, hydrators, worker pools: joined with a timeout),
    close storage clients and drop caches. Interpreter exit does the same. Connections opened
    later start afresh."""
    if "litestream_vfs.aio" in sys.modules:  # event-loop queries first: they use what closes below
        sys.modules["litestream_vfs.aio"].shutdown()
    if "litestream_vfs.process" in sys.modules:  # nothing was ever opened otherwise
        sys.modules["litestream_vfs.process"].PROCESS.close()


def reset_stats() -> None:
    from .process import PROCESS

    PROCESS.reset_counters()


ensure_registered()
install_hook()
