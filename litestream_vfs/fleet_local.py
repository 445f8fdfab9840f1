"""One query on many databases of a directory of replicas, in one process (the local engine).

Bounded whatever the number of databases: `jobs` worker threads, each
reading one database at a time and making its requests itself (its per-file
work runs inline, so `jobs` databases are in flight however small the
process's pools); no thread or poller per database (every database is read
at a fixed state, so nothing follows it); no LIST per database (each
`Replica` adopts its share of the directory's one listing); one storage
client for all (`child` stores share the directory's); pages in the
process's shared, bounded page cache; and a database's connection and
replica are dropped as soon as its rows are in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import apsw

from .connect import replica_uri
from .executors import tier_pool
from .fleet_table import TableBuilder, merge_tables
from .notebook import query
from .process import PROCESS
from .replica import Replica, State
from .storage.base import Counters, LtxObject
from .storage.tree import DirectoryStorage, open_directory
from .timeparse import format_time, format_txid
from .vfs import ensure_registered

#: Called once each time a database is done (rows or error).
Tick = Callable[[], None]


@dataclass(frozen=True)
class At:
    """Which state every database is read at: one instant, one TXID, or (neither) the newest listed.

    A relative time is resolved once, by the caller, so every database is read
    as of the same instant.
    """

    time: datetime | None = None
    txid: int | None = None

    def state(self, replica: Replica) -> State:
        if self.txid is not None:
            return replica.state(self.txid)
        if self.time is not None:
            return replica.state_at(self.time)
        return replica.latest()

    def describe(self) -> str:
        if self.txid is not None:
            return f"TXID {format_txid(self.txid)}"
        return format_time(self.time) if self.time is not None else "latest"


@dataclass(frozen=True)
class Part:
    """A share of a fleet query: everything a worker needs, picklable (no clients, no credentials)."""

    dir_url: str
    sql: str
    at: At
    #: (database path relative to dir_url, its files from the directory's listing), in output order.
    databases: tuple[tuple[str, tuple[LtxObject, ...]], ...]
    jobs: int


@dataclass
class PartResult:
    """Rows of every database that answered (`db` first), one message per database that failed."""

    table: Any  # pyarrow.Table: lossless for a share (see fleet_table), typed once merged
    errors: dict[str, str]
    stats: dict[str, float] = field(default_factory=dict)


def merge_results(results: Sequence[PartResult]) -> PartResult:
    """The shares' results as one, in share order, every column typed."""
    errors = {name: message for result in results for name, message in result.errors.items()}
    stats: dict[str, float] = {}
    for result in results:
        for key, value in result.stats.items():
            stats[key] = stats.get(key, 0) + value
    return PartResult(merge_tables([result.table for result in results]), errors, stats)


def run_part(part: Part, tick: Tick | None = None, store: DirectoryStorage | None = None) -> PartResult:
    """Run `part.sql` on each of `part.databases`, `part.jobs` at a time (on `store`, else a new one, closed after)."""
    ensure_registered()
    counters = store.counters if store is not None else Counters()
    before = counters.snapshot()
    own = store is None
    store = store or open_directory(part.dir_url, counters)
    results: list[tuple[list[str], list[tuple]] | str] = [""] * len(part.databases)
    try:
        with tier_pool("fleet", max(1, part.jobs)) as pool:
            futures = {pool.submit(query_database, store, name, files, part): index
                       for index, (name, files) in enumerate(part.databases)}
            for future in as_completed(futures):
                index = futures.pop(future)
                try:
                    results[index] = future.result()
                except Exception as exc:  # noqa: BLE001 - one database's failure is its own line
                    results[index] = describe_error(exc)
                if tick is not None:
                    tick()
    finally:
        if own:
            store.close()
    builder, errors = TableBuilder(), {}
    for (name, _), result in zip(part.databases, results):
        if isinstance(result, str):
            errors[name] = result
        else:
            builder.add(name, *result)
    spent = {key: value - before[key] for key, value in counters.snapshot().items()}
    return PartResult(builder.table(), errors, {**spent, "databases": len(part.databases)})


def query_database(store: DirectoryStorage, name: str, files: Sequence[LtxObject],
                   part: Part) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of `part.sql` on one database, at `part.at`; its connection closed after."""
    replica = Replica(store.child(name), PROCESS.cache, PROCESS.executors)
    replica.adopt(files)
    state = part.at.state(replica)
    # The directory's one listing stands for the whole run: published again as just confirmed,
    # opening the connection does not list this database again however long reading took.
    replica.adopt(files)
    url = replica.storage.url
    try:
        with PROCESS.lend(url, replica):
            uri = replica_uri(url, label=name.rsplit("/", 1)[-1], txid=format_txid(state.txid)) + "&hydrate=off"
            connection = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
            try:
                return query(connection, part.sql)
            finally:
                connection.close()
    finally:
        replica.close()  # its file metadata and page maps now, not at the next full garbage collection


def describe_error(exc: BaseException) -> str:
    """One line; SQLite's own errors keep their kind (e.g. 'SQLError: no such table: t')."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if isinstance(exc, apsw.Error) else text
