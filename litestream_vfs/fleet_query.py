"""`litestream_vfs.fleet(...)`: one SQL query over every database in a directory of replicas.

The directory is listed once (one paginated listing for all databases and
levels), the state to read is decided once (a relative time becomes one
instant for all), then the databases are queried by the local engine
(`fleet_local`) or spread over a Ray or Dask cluster (`fleet_cluster`).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any, Callable

from .errors import ReplicaError
from .fleet_local import At, Part, merge_results, run_part
from .storage.tree import list_databases, open_directory
from .timeparse import is_latest, parse_time, parse_txid

ENGINES = ("local", "ray", "dask")
#: Called with (databases done, databases in all) as each database finishes.
Progress = Callable[[int, int], None]
DEFAULT_JOBS = 32


@dataclass
class FleetResult:
    """`.table`: a pyarrow.Table, `db` first; `.errors`: {db: message} for databases that failed."""

    table: Any  # pyarrow.Table
    errors: dict[str, str]
    #: Requests and bytes spent (lists, gets, bytes_fetched, ...) and the number of databases.
    stats: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"FleetResult({self.table.num_rows} rows from {int(self.stats.get('databases', 0))} "
                f"databases, {len(self.errors)} errors)")


def resolve_at(time: str | datetime | None = None, txid: str | int | None = None) -> At:
    """The one state every database is read at; a relative time is fixed now, once."""
    if time is not None and txid is not None:
        raise ValueError("give a time or a TXID, not both")
    if isinstance(txid, int):
        return At(txid=txid)
    if txid is not None and not is_latest(txid):
        return At(txid=parse_txid(txid))
    if isinstance(time, datetime):
        return At(time=time if time.tzinfo else time.replace(tzinfo=timezone.utc))
    if time is not None and not is_latest(time):
        return At(time=parse_time(time))
    return At()


def fleet(dir_url: str, sql: str, *, time: str | datetime | None = None, txid: str | int | None = None,
          match: str | None = None, jobs: int = DEFAULT_JOBS, engine: str = "local",
          progress: Progress | None = None) -> FleetResult:
    """Run `sql` on every database under `dir_url` (Litestream's directory replication layout).

    `match`: a glob on database paths relative to `dir_url` (e.g. "tenant-*.db").
    `jobs`: databases in flight at once (per worker for "ray"/"dask").
    `engine`: "local" (threads in this process), "ray" or "dask" (the databases
    partitioned over the workers of the engine's cluster: its own address
    settings, else a local one). `progress(done, total)` is called as each database finishes.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (choose one of {', '.join(ENGINES)})")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    at = resolve_at(time, txid)
    store = open_directory(dir_url)
    try:
        listed = list_databases(store)
        listing = store.counters.snapshot()
        chosen = tuple((name, tuple(files)) for name, files in listed.items()
                       if match is None or fnmatchcase(name, match))
        if not chosen:
            raise ReplicaError(f"none of the {len(listed)} databases under {store.url} matches {match!r}")
        part = Part(dir_url, sql, at, chosen, jobs)
        done = itertools.count(1)
        lock = threading.Lock()

        def tick() -> None:
            if progress is not None:
                with lock:
                    progress(next(done), len(chosen))

        if engine == "local":
            shares = [run_part(part, tick, store)]
        else:
            from .fleet_cluster import run_on_cluster

            shares = run_on_cluster(engine, part, tick)
    finally:
        store.close()
    result = merge_results(shares)
    stats = {key: listing.get(key, 0) + value for key, value in result.stats.items()}
    return FleetResult(result.table, result.errors, stats)
