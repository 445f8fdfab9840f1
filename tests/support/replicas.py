"""Real Litestream replicas of the workload database, plus ground truth.

Each fixture runs the real `litestream replicate` of one pinned version against
a fresh copy of Chinook while the workload runs, to a local directory or to S3
on SeaweedFS, with fast compaction so L1 and L2 files exist, then stops it so
the replica is stable. Ground truth for any state comes from the real
`litestream restore`.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import apsw

from litestream_vfs.storage.base import LtxObject, parse_ltx_name

from .binaries import litestream_binary
from .seaweed import SeaweedFS, stop_process_group
from .workload import STEPS, Step, prepare_database, run_workload

#: Compaction intervals for L1 and L2: short, so both levels fill within seconds.
LEVEL_INTERVALS = ("2s", "6s")
SYNC_INTERVAL = "100ms"
DB_NAME = "chinook.db"
_SHIP_TIMEOUT = 30.0
_POLL = 0.05
_SETTLE = 0.35  # a few monitor intervals with nothing new = Litestream is idle


@functools.cache
def _client(server: SeaweedFS):  # -> botocore S3 client; one per server, as listing is frequent
    return server.boto3_client()


@dataclass(frozen=True)
class ReplicaLocation:
    """Where a replica's files live; lists them as (object key or path, LtxObject)."""

    backend: str  # "file" | "s3"
    root: str  # directory path (file) or key prefix without trailing slash (s3)
    server: SeaweedFS | None = None

    def list_objects(self) -> dict[str, int]:
        """Every object under the replica, key/relative path -> size (LTX or not)."""
        if self.server is None:
            base = Path(self.root)
            found = {}
            for path in sorted(base.rglob("*")):
                try:
                    if path.is_file():
                        found[str(path.relative_to(base))] = path.stat().st_size
                except FileNotFoundError:  # Litestream renamed its .tmp file between listing and stat
                    continue
            return found
        client = _client(self.server)
        found: dict[str, int] = {}
        for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.server.bucket, Prefix=self.root + "/"):
            found.update((obj["Key"], obj["Size"]) for obj in page.get("Contents", []))
        return found

    def ltx_files(self) -> list[LtxObject]:
        """The LTX files in every level, parsed from the object names."""
        files = []
        for key, size in self.list_objects().items():
            parts = key.split("/")
            level, name = parts[-2], parts[-1]
            span = parse_ltx_name(name)
            if span is not None and level.isdigit():
                files.append(LtxObject(int(level), span[0], span[1], size))
        return sorted(files)

    def newest_txid(self, level: int = 0) -> int:
        """The highest max_txid in `level` (0 when empty)."""
        return max((f.max_txid for f in self.ltx_files() if f.level == level), default=0)


@dataclass(frozen=True)
class ReplicaFixture:
    """A finished, stable replica written by real Litestream, and its ground truth."""

    version: str
    backend: str
    #: What our package is given: a plain absolute directory, or a full s3:// URL.
    url: str
    #: Environment needed to read `url` (credentials for s3; empty for file).
    env: dict[str, str] = field(hash=False)
    #: The source database Litestream replicated (WAL mode; read it read-only).
    db_path: Path
    #: (workload step name, TXID at which that step landed), oldest first.
    step_txids: tuple[tuple[str, int], ...]
    location: ReplicaLocation
    binary: Path
    workdir: Path
    _restored: dict[int | None, Path] = field(default_factory=dict, hash=False, repr=False,
                                              compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, hash=False, repr=False,
                                  compare=False)

    @property
    def litestream_url(self) -> str:
        """`url` as the litestream CLI takes it (it reads a plain path as a database path)."""
        return f"file://{self.url}" if self.backend == "file" else self.url

    @property
    def id(self) -> str:
        return f"v{self.version}-{self.backend}"

    def ltx_files(self) -> list[LtxObject]:
        return self.location.ltx_files()

    def litestream_txids(self) -> list[int]:
        """Sorted distinct max_txid of every LTX file present (the restorable TXIDs)."""
        return sorted({f.max_txid for f in self.ltx_files()})

    def restore(self, txid: int | None = None) -> Path:
        """The database as the real `litestream restore` rebuilds it (cached per txid).

        The file is in WAL mode (header bytes 18-19 are 2), as the source was;
        open it read-only and do not write to it: other tests share it.
        """
        with self._lock:
            cached = self._restored.get(txid)
            if cached is not None:
                return cached
            out = self.workdir / f"restored-{'latest' if txid is None else f'{txid:016x}'}.db"
            run_restore(self.binary, self.litestream_url, out, self.env, txid)
            self._restored[txid] = out
            return out

    def truth(self, txid: int | None, sql: str) -> list[tuple]:
        """Rows of `sql` on the real `litestream restore` of `txid`."""
        connection = apsw.Connection(str(self.restore(txid)), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()


def step(replica: ReplicaFixture, name: str) -> int:
    """The TXID at which the workload step `name` was committed."""
    return dict(replica.step_txids)[name]


def run_restore(binary: Path, url: str, out: Path, env: dict[str, str],
                txid: int | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run `litestream restore -o out [-txid X] url`; raise with its output if it fails."""
    args = [str(binary), "restore", "-o", str(out)]
    if txid is not None:
        args += ["-txid", f"{txid:016x}"]
    result = subprocess.run(args + [url], env=child_env(env), capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"litestream restore of {url} (txid {txid}) failed "
                           f"(exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment for a Litestream child, minus what breaks its S3 client."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(extra)
    return env


class Snapshots(NamedTuple):
    """Litestream's `snapshot:` settings: how often a snapshot is taken, how long history is kept."""
    interval: str
    retention: str


HOURLY_SNAPSHOTS = Snapshots("1h", "24h")


def replicate_config(db_path: Path, replica_url: str,
                     settings: Mapping[str, str] = MappingProxyType({}),
                     level_intervals: Sequence[str] = LEVEL_INTERVALS,
                     snapshots: Snapshots = HOURLY_SNAPSHOTS) -> str:
    """Litestream YAML: one database, one replica, fast sync and compaction.

    `settings` adds top-level scalars, e.g. {"l0-retention": "1s",
    "l0-retention-check-interval": "1s"} to have compacted L0 files deleted;
    `level_intervals` are the compaction intervals of levels 1, 2, ...;
    `snapshots` how often a snapshot is taken and how long history is kept.
    """
    levels = "".join(f"  - interval: {interval}\n" for interval in level_intervals)
    extra = "".join(f"{key}: {value}\n" for key, value in settings.items())
    return (f"{extra}levels:\n{levels}"
            f"snapshot:\n  interval: {snapshots.interval}\n  retention: {snapshots.retention}\n"
            "dbs:\n"
            f"  - path: {db_path}\n"
            f"    monitor-interval: {SYNC_INTERVAL}\n"
            "    replica:\n"
            f"      url: \"{replica_url}\"\n"
            f"      sync-interval: {SYNC_INTERVAL}\n")


def build_replica(version: str, backend: str, workdir: Path, server: SeaweedFS | None = None,
                  settings: Mapping[str, str] = MappingProxyType({})) -> ReplicaFixture:
    """Run the workload under real `litestream replicate` and return the stable replica."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / DB_NAME
    prepare_database(db_path)
    if backend == "file":
        replica_dir = workdir / "replica"
        location = ReplicaLocation("file", str(replica_dir))
        url, env, config_url = str(replica_dir), {}, f"file://{replica_dir}"
    elif backend == "s3" and server is not None:
        prefix = f"{workdir.name}/{DB_NAME}"
        location = ReplicaLocation("s3", prefix, server)
        url = config_url = server.s3_url(prefix)
        env = server.credentials_env()
    else:
        raise ValueError(f"unknown backend {backend!r} (s3 needs a server)")
    binary = litestream_binary(version)
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, config_url, settings))
    steps = replicate_steps(binary, config, env, location.newest_txid, db_path, STEPS, location.root,
                            compacted_levels=(1, 2))
    return ReplicaFixture(version=version, backend=backend, url=url, env=env, db_path=db_path,
                          step_txids=steps, location=location, binary=binary,
                          workdir=workdir)


def replicate_steps(binary: Path, config: Path, env: Mapping[str, str], newest: Callable[[int], int],
                    db_path: Path, steps: Sequence[Step], where: str,
                    compacted_levels: tuple[int, ...] = (1,)) -> tuple[tuple[str, int], ...]:
    """Run `litestream replicate -config CONFIG` while `steps` commit one at a time.

    Each step waits until its L0 file is in the replica (`newest(level)` gives
    the highest max_txid there), so every step ends at its own TXID; at the end
    it waits until each of `compacted_levels` covers the last one, then stops
    Litestream. Returns (step name, TXID) pairs, starting with ("initial", …).
    """
    log_path = config.parent / "replicate.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(binary), "replicate", "-config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=child_env(dict(env)), start_new_session=True)
        try:
            watch = _Watcher(newest, where, proc, log_path)
            landed = (("initial", watch.wait_for_new_l0(0)),)
            landed += run_workload(db_path, lambda name: watch.wait_for_new_l0(watch.last), steps)
            final = landed[-1][1]
            for level in compacted_levels:
                watch.until(lambda lvl=level: newest(lvl) >= final, f"L{level} compaction up to {final:016x}")
        finally:
            stop_process_group(proc)
    return landed


@dataclass
class _Watcher:
    """Polls a replica while Litestream runs, failing fast (with its log) if it dies."""

    newest: Callable[[int], int]
    where: str
    proc: subprocess.Popen
    log_path: Path
    last: int = 0

    def until(self, condition: Callable[[], bool], what: str,
              timeout: float = _SHIP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"waiting for {what} in {self.where}: litestream "
                                   f"exit code {self.proc.poll()}; log tail:\n{tail}")
            time.sleep(_POLL)

    def wait_for_new_l0(self, previous: int) -> int:
        """Wait until L0 holds a TXID above `previous` and Litestream has gone quiet.

        A step can land as more than one file: after a checkpoint Litestream
        writes its own `_litestream_seq` table, which ships as an extra L0 file.
        Waiting for quiet keeps every such file with the step that caused it.
        """
        self.until(lambda: self.newest(0) > previous, f"an L0 file after {previous:016x}")
        newest = self.newest(0)
        while True:
            time.sleep(_SETTLE)
            latest = self.newest(0)
            if latest == newest:
                self.last = newest
                return newest
            newest = latest


#: Every (version, backend) pair the `replica` fixture covers.
REPLICA_KINDS = tuple((version, backend) for version in ("0.5.15", "0.5.17")
                      for backend in ("file", "s3"))


class ReplicaFactory:
    """Builds replicas once per session, several at a time, only when first asked for.

    Failures are kept too, so one broken build errors every test that needs
    it without being retried.
    """

    def __init__(self, root: Path, max_workers: int = len(REPLICA_KINDS)) -> None:
        self._root = root
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="replica")
        self._futures: dict[tuple[str, str], Future[ReplicaFixture]] = {}
        self._lock = threading.Lock()

    def get(self, version: str, backend: str, server: SeaweedFS | None = None,
            together_with: tuple[tuple[str, str], ...] = ()) -> ReplicaFixture:
        """The replica for (version, backend); also starts building `together_with`."""
        with self._lock:
            for kind in ((version, backend), *together_with):
                if kind not in self._futures:
                    kind_version, kind_backend = kind
                    self._futures[kind] = self._pool.submit(
                        build_replica, kind_version, kind_backend,
                        self._root / f"v{kind_version}-{kind_backend}",
                        server if kind_backend == "s3" else None)
            future = self._futures[(version, backend)]
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
