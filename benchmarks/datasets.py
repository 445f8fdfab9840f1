"""Benchmark databases: built once into a cache, shipped to S3 by the real Litestream.

The SQLite sources are cached (building ~100 MB of rows takes a while); each
run copies them into its work directory and ships the copy with
`litestream replicate -once`, because a fresh SeaweedFS starts empty and
Litestream adds its own tables to the database it replicates.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import apsw

from support.binaries import litestream_binary
from support.replicas import child_env
from support.seaweed import SeaweedFS
from support.workload import chinook_source

LITESTREAM_VERSION = "0.5.17"
#: Bytes per synthetic row: payload text plus the other columns and overhead.
_EVENT_PAYLOAD_CHARS = 160
_APPROX_ROW_BYTES = 215
#: Events per user; user ids follow insertion order, so one user's rows are adjacent.
EVENTS_PER_USER = 4


@dataclass(frozen=True)
class Dataset:
    """A database as shipped: its local copy (the baseline) and where its replica lives."""

    name: str
    local_path: Path
    key_prefix: str
    #: RFC 3339 instant at which the replica held an older state (None: single state).
    older_time: str | None = None
    rows: int = 0


def cache_dir() -> Path:
    """Where built SQLite sources are kept between runs (LITESTREAM_VFS_BENCH_CACHE overrides)."""
    configured = os.environ.get("LITESTREAM_VFS_BENCH_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "litestream-vfs-bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def events_source(megabytes: int) -> tuple[Path, int]:
    """A cached ~`megabytes` MB database with an indexed `events` table; (path, rows)."""
    rows = megabytes * 1024 * 1024 // _APPROX_ROW_BYTES
    path = cache_dir() / f"events-{rows}.sqlite"
    if path.is_file():
        return path, rows
    staging = path.with_suffix(".building")
    staging.unlink(missing_ok=True)
    conn = apsw.Connection(str(staging))
    try:
        conn.execute("PRAGMA journal_mode=off; PRAGMA synchronous=off; PRAGMA page_size=4096")
        conn.execute("CREATE TABLE events(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
                     " created TEXT NOT NULL, payload TEXT NOT NULL)")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO events(id, user_id, created, payload)"
            " SELECT i, i / ?, strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + i * 7, 'unixepoch'),"
            " hex(randomblob(?)) FROM n",
            (rows, EVENTS_PER_USER, _EVENT_PAYLOAD_CHARS // 2))
        conn.execute("CREATE INDEX events_user ON events(user_id)")
    finally:
        conn.close()
    os.replace(staging, path)
    return path, rows


def ship(source: Path, workdir: Path, server: SeaweedFS, name: str) -> Dataset:
    """Copy `source` to `workdir`, switch it to WAL and replicate it once to `server`."""
    local = workdir / f"{name}.db"
    shutil.copyfile(source, local)
    conn = apsw.Connection(str(local))
    try:
        conn.execute("PRAGMA journal_mode=wal")
    finally:
        conn.close()
    prefix = f"bench/{name}.db"
    replicate_once(local, server, prefix)
    return Dataset(name=name, local_path=local, key_prefix=prefix)


def ship_chinook(workdir: Path, server: SeaweedFS) -> Dataset:
    """Chinook with two later transactions, so the replica has an older state to jump to."""
    shipped = ship(chinook_source(), workdir, server, "chinook")
    older = _next_whole_second()
    time.sleep(max(0.0, older.timestamp() + 1.0 - time.time()))
    conn = apsw.Connection(str(shipped.local_path))
    try:
        with conn:
            conn.execute("UPDATE Track SET UnitPrice = UnitPrice * 2 WHERE GenreId = 1")
        replicate_once(shipped.local_path, server, shipped.key_prefix)
        with conn:
            conn.execute("DELETE FROM InvoiceLine WHERE InvoiceId % 10 = 0")
        replicate_once(shipped.local_path, server, shipped.key_prefix)
    finally:
        conn.close()
    return Dataset(name=shipped.name, local_path=shipped.local_path,
                   key_prefix=shipped.key_prefix,
                   older_time=older.strftime("%Y-%m-%dT%H:%M:%SZ"))


def ship_events(workdir: Path, server: SeaweedFS, megabytes: int) -> Dataset:
    source, rows = events_source(megabytes)
    shipped = ship(source, workdir, server, "events")
    return Dataset(name=shipped.name, local_path=shipped.local_path,
                   key_prefix=shipped.key_prefix, rows=rows)


def replicate_once(db: Path, server: SeaweedFS, prefix: str) -> None:
    """One `litestream replicate -once` pass straight to SeaweedFS (not through the proxy)."""
    done = subprocess.run([str(litestream_binary(LITESTREAM_VERSION)), "replicate", "-once",
                           str(db), server.s3_url(prefix)],
                          env=child_env(server.credentials_env()), capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"litestream replicate -once {db} -> s3://{server.bucket}/{prefix} "
                           f"failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


def btree_depth(db: Path, name: str) -> int:
    """Levels of the B-tree `name` (table or index) in a local database, via dbstat."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        (depth,) = conn.execute(
            "SELECT max(length(path) - length(replace(path, '/', ''))) FROM dbstat WHERE name = ?",
            (name,)).fetchone()
    finally:
        conn.close()
    return int(depth)


def _next_whole_second() -> datetime:
    """The next whole UTC second: a time strictly after everything shipped so far."""
    now = time.time()
    return datetime.fromtimestamp(math.floor(now) + 1, tz=timezone.utc)
