"""SQL views of a replica, added to every APSW connection: history and counters.

- ``litestream_history`` (table-valued; optional argument: schema name, default
  ``main``): txid, time, level, size, db_size, current — one row per
  restorable state, oldest first.
- ``litestream_damage`` (table-valued; optional schema): file, size, problem —
  every file of the replica found damaged (cut short, corrupt); the states only
  it could rebuild are left out of ``litestream_history``.
- ``litestream_stats`` (table-valued; optional schema): scope
  (``connection`` or ``process``), name, value. Besides the counters, per
  connection: ``polls``, ``poll_errors``, ``last_poll_error`` (text, NULL
  when the last poll succeeded), ``seconds_since_poll_ok`` and ``max_lag``
  (NULL: off), so a process can see that it is going stale.
- ``litestream_reset_stats([schema])``: zero the counters of that schema's
  connection and of the process; returns 1.
- ``litestream_log`` and ``litestream_diff``: see `changes_sql`.
"""

from __future__ import annotations

import weakref
from typing import Iterator

import apsw

from .timeparse import format_time, format_txid
from .errors import ReplicaError, StaleReplica
from .vfs import file_of


def _history(connection_ref: weakref.ReferenceType) -> object:
    def litestream_history(schema: str = "main") -> Iterator[tuple]:
        file = file_of(connection_ref(), schema)
        current = file.state.txid
        for entry in file.replica.history(file.charge):
            yield (format_txid(entry.txid), format_time(entry.timestamp), entry.level,
                   entry.file_size, entry.db_size, int(entry.txid == current))

    litestream_history.columns = ("txid", "time", "level", "size", "db_size", "current")
    return litestream_history


def _damage(connection_ref: weakref.ReferenceType) -> object:
    def litestream_damage(schema: str = "main") -> Iterator[tuple]:
        file = file_of(connection_ref(), schema)
        file.replica.history(file.charge)  # checks every file a state relies on
        for obj, problem in file.replica.damage.found():
            yield (str(obj), obj.size, problem.problem)

    litestream_damage.columns = ("file", "size", "problem")
    return litestream_damage


def _stats(connection_ref: weakref.ReferenceType) -> object:
    def litestream_stats(schema: str = "main") -> Iterator[tuple]:
        from .process import PROCESS

        file = file_of(connection_ref(), schema)
        for name, value in file.counters.snapshot().items():
            yield ("connection", name, value)
        yield from (("connection", name, value) for name, value in file.freshness.report().items())
        for name, value in PROCESS.totals().items():
            yield ("process", name, value)
        yield ("process", "cache_bytes", PROCESS.cache.current_bytes)

    litestream_stats.columns = ("scope", "name", "value")
    return litestream_stats


#: SQLite's own page cache for connections on a replica (KiB, as PRAGMA cache_size takes it
#: when negative). Larger than SQLite's 2 MB default so warm queries rarely reach the VFS.
DEFAULT_SQLITE_CACHE_KIB = 64 * 1024


def sqlite_cache_kib() -> int:
    """SQLite's own cache per connection: DEFAULT_SQLITE_CACHE_KIB, but never more than the
    process's page cache (`register(cache_size=)`), so a small budget bounds SQLite's cache too
    (at least SQLite's default 2 MiB)."""
    from .process import PROCESS

    return min(DEFAULT_SQLITE_CACHE_KIB, max(PROCESS.settings.cache_bytes, 2 << 20) // 1024)


def is_replica(connection: apsw.Connection, schema: str = "main") -> bool:
    try:
        file_of(connection, schema)
    except ReplicaError:
        return False
    return True


def install(connection: apsw.Connection) -> None:
    """Connection hook: add the litestream SQL functions and tables to a new connection.

    The change machinery loads when its tables are first read, not with the package.
    """
    from .changes_sql import install_changes
    from .tablefunc import table_function

    if is_replica(connection):
        try:
            connection.execute(f"PRAGMA cache_size = -{sqlite_cache_kib()}")
        except StaleReplica:
            pass  # the connection opens all the same: its reads fail until the replica is fresh again
    ref = weakref.ref(connection)
    table_function(connection, "litestream_history", _history(ref))
    table_function(connection, "litestream_stats", _stats(ref))
    table_function(connection, "litestream_damage", _damage(ref))

    def litestream_reset_stats(schema: str = "main") -> int:
        from .process import PROCESS

        file_of(ref(), schema).counters.reset()
        PROCESS.reset_counters()
        return 1

    connection.create_scalar_function("litestream_reset_stats", litestream_reset_stats, -1)
    install_changes(connection)


def install_hook() -> None:
    if install not in apsw.connection_hooks:
        apsw.connection_hooks.append(install)
