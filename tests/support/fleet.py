"""A fleet of small tenant databases replicated by real Litestream directory replication.

`build_fleet` writes `count` WAL-mode databases with different contents (some
in a subdirectory) into one source directory per backend, and runs one
`litestream replicate` whose config has a `dir:` entry (`pattern: "*.db"`,
recursive) per backend: a local directory, and S3 on SeaweedFS when a server
is given. Round one ships, an instant is noted while Litestream is idle
(`between`), round two changes most tenants and ships, then Litestream stops.
One more replica, a copy of a tenant's with a flipped byte in every file
(`CORRUPT`), sits among them. Ground truth is `litestream restore` of each
database, at the latest state and at the TXID each had shipped by `between`
(not `restore -timestamp`: Litestream 0.5.17 refuses it for a database whose
only state is its first snapshot, "timestamp does not exist").
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import apsw

from .binaries import litestream_binary
from .replicas import LEVEL_INTERVALS, SYNC_INTERVAL, ReplicaLocation, child_env, run_restore
from .seaweed import SeaweedFS, stop_process_group

#: The damaged replica (a copy of the first tenant's, one byte flipped in each file).
CORRUPT = "zz-corrupt.db"
#: Seconds to wait for Litestream to ship a round: a base plus a little per database.
_SHIP_TIMEOUT = 60.0
_SHIP_TIMEOUT_PER_DATABASE = 0.25
_QUIET = 1.0  # seconds with no new object: Litestream is idle


def tenant_name(index: int) -> str:
    """Database path relative to the directory: every fifth tenant lives in `eu/`."""
    return f"{'eu/' if index % 5 == 4 else ''}tenant-{index:03d}.db"


def write_round_one(path: Path, index: int) -> None:
    """A tenant's first contents: 3-7 items that differ per tenant, and its own id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(path))
    try:
        conn.pragma("journal_mode", "wal")
        conn.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL);"
                     "CREATE TABLE meta(k TEXT PRIMARY KEY, v)")
        with conn:
            conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)",
                             [(j, f"item-{index}-{j}", index * 10 + j, None if j == 2 else index + j / 4)
                              for j in range(1, 4 + index % 5)])
            conn.execute("INSERT INTO meta VALUES ('tenant', ?)", (index,))
    finally:
        conn.close()


def write_round_two(path: Path, index: int) -> bool:
    """Change two of every three tenants (insert, update, and sometimes delete); True if changed."""
    if index % 3 == 0:
        return False
    conn = apsw.Connection(str(path))
    try:
        conn.pragma("busy_timeout", 10000)
        with conn:
            conn.execute("INSERT INTO items(name, qty, price) VALUES (?, ?, ?)", (f"new-{index}", -index, 0.5))
            conn.execute("UPDATE items SET qty = qty + 1000 WHERE id = 1")
            if index % 4 == 0:
                conn.execute("DELETE FROM items WHERE id = 2")
    finally:
        conn.close()
    return True


@dataclass(frozen=True)
class FleetReplica:
    """A directory of replicas written by real Litestream, and its ground truth."""

    backend: str
    #: What `fleet()` is given: the directory URL, ending in '/'.
    dir_url: str
    env: dict[str, str] = field(hash=False)
    #: Every healthy tenant, as database paths relative to dir_url, sorted.
    names: tuple[str, ...]
    #: An instant (RFC 3339) after round one shipped and before round two began.
    between: str
    #: Database path -> its newest TXID at `between`.
    round_one: dict[str, int] = field(hash=False)
    binary: Path
    workdir: Path
    location: ReplicaLocation
    _restored: dict[tuple[str, int | None], Path] = field(default_factory=dict, hash=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, hash=False, compare=False)

    def litestream_url(self, name: str) -> str:
        """One tenant's replica URL as `litestream restore` takes it."""
        base, _, query = self.dir_url.partition("?")
        url = base + name
        return ("file://" + url if self.backend == "file" else url) + (f"?{query}" if query else "")

    def restore(self, name: str, txid: int | None = None) -> Path:
        """`litestream restore` of one tenant (at `txid`, else latest), cached."""
        key = (name, txid)
        with self._lock:
            if key in self._restored:
                return self._restored[key]
        out = self.workdir / "restored" / ("latest" if txid is None else f"{txid:016x}") / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists():
            run_restore(self.binary, self.litestream_url(name), out, self.env, txid)
        with self._lock:
            self._restored[key] = out
        return out

    def truth(self, sql: str, txids: Mapping[str, int] | None = None) -> list[tuple]:
        """(name, *row) for every row of `sql` on every healthy tenant's restore (latest, or at
        `txids[name]`, e.g. `round_one`), in name order."""
        def restored(name: str) -> Path:
            return self.restore(name, None if txids is None else txids[name])

        with ThreadPoolExecutor(8, thread_name_prefix="fleet-restore") as pool:
            paths = list(pool.map(restored, self.names))
        rows: list[tuple] = []
        for name, path in zip(self.names, paths):
            conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
            try:
                rows.extend((name, *row) for row in conn.execute(sql))
            finally:
                conn.close()
        return rows


def newest_per_database(location: ReplicaLocation) -> dict[str, int]:
    """Database path -> highest max_txid in its replica (an independent reading of the layout)."""
    newest: dict[str, int] = {}
    cut = 2 if location.server is not None else 3  # s3: <db>/<NNNN>/<f>; file: <db>/ltx/<N>/<f>
    for key, _ in location.list_objects().items():
        parts = key.split("/")
        if location.server is not None:
            parts = parts[len(location.root.split("/")):]
        if len(parts) <= cut or not parts[-1].endswith(".ltx"):
            continue
        name, txid = "/".join(parts[:-cut]), int(parts[-1][17:33], 16)
        newest[name] = max(newest.get(name, 0), txid)
    return newest


def _wait_until(condition: Callable[[], bool], what: str, proc: subprocess.Popen, log: Path,
                timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"waiting for {what}: litestream exit code {proc.poll()}; log tail:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def _settled(locations: Sequence[ReplicaLocation], wanted: Callable[[ReplicaLocation, dict[str, int]], bool],
             what: str, proc: subprocess.Popen, log: Path, timeout: float) -> list[dict[str, int]]:
    """Wait until every location has what is wanted and then nothing new for a while."""
    _wait_until(lambda: all(wanted(loc, newest_per_database(loc)) for loc in locations), what, proc, log, timeout)
    seen = [newest_per_database(loc) for loc in locations]
    while True:
        time.sleep(_QUIET)
        now = [newest_per_database(loc) for loc in locations]
        if now == seen:
            return now
        seen = now


def fleet_config(entries: Sequence[tuple[Path, str]]) -> str:
    """Litestream YAML: one recursive `dir:` entry per (source directory, replica URL)."""
    levels = "".join(f"  - interval: {interval}\n" for interval in LEVEL_INTERVALS)
    dbs = "".join(f"  - dir: {source}\n    pattern: \"*.db\"\n    recursive: true\n"
                  f"    monitor-interval: {SYNC_INTERVAL}\n"
                  f"    replica:\n      url: \"{url}\"\n      sync-interval: {SYNC_INTERVAL}\n"
                  for source, url in entries)
    return f"levels:\n{levels}snapshot:\n  interval: 1h\n  retention: 24h\ndbs:\n{dbs}"


def build_fleet(workdir: Path, count: int, server: SeaweedFS | None = None, version: str = "0.5.17", *,
                to_directory: bool = True, corrupt: bool = True) -> dict[str, FleetReplica]:
    """Replicate `count` tenants to a directory (unless not `to_directory`) and to S3 when `server` is
    given, adding the CORRUPT replica unless told not to; backend -> fleet."""
    workdir.mkdir(parents=True, exist_ok=True)
    names = tuple(sorted(tenant_name(i) for i in range(count)))
    backends: dict[str, tuple[Path, str, str, ReplicaLocation, dict[str, str]]] = {}
    if to_directory:
        file_dir = workdir / "replica-file"
        backends["file"] = (workdir / "source-file", f"file://{file_dir}", f"{file_dir}/",
                            ReplicaLocation("file", str(file_dir)), {})
    if server is not None:
        prefix = f"{workdir.name}/fleet"
        url = server.s3_url(prefix)
        base, _, query = url.partition("?")
        backends["s3"] = (workdir / "source-s3", url, f"{base}/?{query}", ReplicaLocation("s3", prefix, server),
                          server.credentials_env())
    for source, *_ in backends.values():
        for index in range(count):
            write_round_one(source / tenant_name(index), index)
    env = {k: v for _, _, _, _, creds in backends.values() for k, v in creds.items()}
    binary = litestream_binary(version)
    config = workdir / "litestream.yml"
    config.write_text(fleet_config([(source, url) for source, url, *_ in backends.values()]))
    log = workdir / "replicate.log"
    locations = [entry[3] for entry in backends.values()]
    timeout = _SHIP_TIMEOUT + _SHIP_TIMEOUT_PER_DATABASE * count
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), "replicate", "-config", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env(env),
                                start_new_session=True)
        try:
            first = _settled(locations, lambda loc, newest: set(names) <= set(newest),
                             f"round one of {count} tenants", proc, log, timeout)
            time.sleep(0.5)
            between = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            time.sleep(0.5)
            changed = {tenant_name(i) for source, *_ in backends.values()
                       for i in range(count) if write_round_two(source / tenant_name(i), i)}
            shipped = dict(zip((id(loc) for loc in locations), first))
            _settled(locations, lambda loc, newest: all(newest.get(n, 0) > shipped[id(loc)][n] for n in changed),
                     "round two", proc, log, timeout)
        finally:
            stop_process_group(proc)
    fleets = {}
    for backend, (_, _, dir_url, location, creds) in backends.items():
        if corrupt:
            _add_corrupt_copy(location, names[0])
        fleets[backend] = FleetReplica(backend, dir_url, creds, names, between, first[locations.index(location)],
                                       binary, workdir / backend, location)
    return fleets


def _add_corrupt_copy(location: ReplicaLocation, source: str) -> None:
    """CORRUPT: `source`'s replica copied with one byte flipped mid-file in every LTX file,
    so whichever files a plan picks, a checksum fails."""
    if location.server is None:
        root = Path(location.root)
        shutil.copytree(root / source, root / CORRUPT)
        for path in (root / CORRUPT).rglob("*.ltx"):
            path.write_bytes(_flipped(path.read_bytes()))
        return
    client = location.server.boto3_client()
    bucket = location.server.bucket
    prefix = f"{location.root}/{source}/"
    for key in sorted(location.list_objects()):
        if key.startswith(prefix):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            client.put_object(Bucket=bucket, Key=f"{location.root}/{CORRUPT}/{key[len(prefix):]}",
                              Body=_flipped(body) if key.endswith(".ltx") else body)


def _flipped(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    return bytes(damaged)
