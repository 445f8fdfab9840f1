"""A soak against a live Litestream writer (issue 14): readers that follow, pin and travel
for a long time; every sampled answer is checked against `litestream restore`.

The parent process runs the real `litestream replicate` (L1 compaction every
10 s, L0 files deleted 30 s after compaction), a writer thread committing about
five transactions a second, a `Shadow` of the replica (so any state ever read
can still be restored as ground truth after retention deleted its L0 files) and
the truth checker. The readers run in a child process (support.soak_reader), so
the RSS sampled every 30 s is the VFS's alone.
"""

from __future__ import annotations

import collections
import multiprocessing
import queue as queues
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import apsw

from . import soak_reader
from .live import live_replication
from .replicas import HOURLY_SNAPSHOTS, Snapshots, run_restore
from .seaweed import SeaweedFS
from .shadow import Shadow
from .workload import open_writer

RETENTION = {"l0-retention": "30s", "l0-retention-check-interval": "5s"}
LEVEL_INTERVALS = ("10s",)
CACHE_SIZE = 2 * 1024 * 1024  # small, so reads keep evicting and fetching again
RSS_EVERY = 30.0
REFERENCE_SECONDS = 300.0  # RSS at the end is compared with RSS at minute 5
MAX_BACKLOG = 200  # samples waiting for a restore beyond this are counted, not checked


class Writer:
    """Commits about `rate` transactions a second, pausing `pause` seconds after every `burst`.

    A pause longer than the L1 interval makes the last commit before it the end
    of an L1 file: the holder pins it, and it stays restorable after retention.
    """

    def __init__(self, db_path: Path, paused: Any, rate: float = 6.0, burst: float = 45.0,
                 pause: float = 12.0, seed: int = 14) -> None:
        self.db_path, self.paused, self.rate, self.burst, self.pause = db_path, paused, rate, burst, pause
        self.rng = random.Random(seed)
        self.transactions = 0
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-writer")

    def start(self) -> None:
        connection = open_writer(self.db_path)
        try:
            with connection:
                connection.execute("CREATE TABLE ticks(n INTEGER PRIMARY KEY, at REAL, note TEXT)")
                connection.execute("CREATE TABLE bulk(id INTEGER PRIMARY KEY, payload BLOB)")
        finally:
            connection.close()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection = open_writer(self.db_path)
        try:
            burst_end = time.monotonic() + self.burst
            while not self._stop.wait(1.0 / self.rate):
                if time.monotonic() >= burst_end:
                    self.paused.set()
                    self._stop.wait(self.pause)
                    self.paused.clear()
                    burst_end = time.monotonic() + self.burst
                with connection:
                    self._transaction(connection, self.transactions + 1)
                self.transactions += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the soak
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    def _transaction(self, connection: apsw.Connection, n: int) -> None:
        """Insert a tick; often reprice a track; now and then trim, or rewrite a bulk block."""
        note = "x" * self.rng.randrange(50, 400)
        connection.execute("INSERT INTO ticks VALUES (?, ?, ?)", (n, time.time(), note))
        if self.rng.random() < 0.3:
            connection.execute("UPDATE Track SET UnitPrice = round(UnitPrice + 0.01, 2) WHERE TrackId = ?",
                               (self.rng.randrange(1, 3504),))
        if n % 50 == 0:
            connection.execute("DELETE FROM ticks WHERE n <= ?", (n - 1500,))
        if n % 300 == 0:
            connection.executemany("INSERT INTO bulk VALUES (?, ?)",
                                   ((n * 1000 + i, self.rng.randbytes(1000)) for i in range(200)))
            connection.execute("DELETE FROM bulk WHERE id < ?", ((n - 900) * 1000,))


@dataclass
class Truth:
    """Checks sampled (TXID, answer) pairs against `litestream restore` of the shadow replica."""

    binary: Path
    shadow: Shadow
    workdir: Path
    comparisons: int = 0
    restores: int = 0
    restore_seconds: float = 0.0
    unchecked: int = 0
    wrong: int = 0
    wrong_samples: list[dict] = field(default_factory=list)
    truth_failures: list[str] = field(default_factory=list)
    tallies: dict[str, dict] = field(default_factory=dict)
    #: The readers' own account of their memory (see soak_reader.memory), every 30 s.
    memory: list[dict] = field(default_factory=list)
    _answers: collections.OrderedDict = field(default_factory=collections.OrderedDict)

    def consume(self, queue: Any, backlog: Any, done: threading.Event) -> None:
        """Check samples from `queue` until the readers' final ("done", tallies)."""
        while True:
            try:
                item = queue.get(timeout=1.0)
            except queues.Empty:
                continue
            if item[0] == "done":
                self.tallies = item[1]
                done.set()
                return
            if item[0] == "memory":
                self.memory.append(item[1])
                continue
            _, role, txid, kind, got = item
            if txid not in self._answers and backlog() > MAX_BACKLOG:
                self.unchecked += 1
                continue
            expected = self.expected(txid)
            if expected is None:
                continue
            self.comparisons += 1
            if expected[kind] != got:
                self.wrong += 1
                if len(self.wrong_samples) < 20:
                    self.wrong_samples.append({"role": role, "txid": f"{txid:016x}", "kind": kind,
                                               "read": got, "restore": expected[kind]})

    def expected(self, txid: int) -> dict[str, str] | None:
        """Both answers of `litestream restore -txid` (kept for the last 5,000 TXIDs)."""
        if txid in self._answers:
            return self._answers[txid]
        out = self.workdir / "truth.db"
        for stale in self.workdir.glob("truth.db*"):
            stale.unlink()
        started = time.monotonic()
        self.shadow.sync()  # the state was read moments ago: its newest file may not be linked yet
        try:
            run_restore(self.binary, f"file://{self.shadow.target}", out, {}, txid)
        except RuntimeError as exc:
            self.truth_failures.append(str(exc)[:500])
            return None
        self.restores += 1
        self.restore_seconds += time.monotonic() - started
        connection = apsw.Connection(str(out), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            answers = {kind: soak_reader.answer(connection, kind) for kind in ("quick", "full")}
        finally:
            connection.close()
        self._answers[txid] = answers
        if len(self._answers) > 5000:
            self._answers.popitem(last=False)
        return answers


@dataclass
class SoakResult:
    seconds: float
    backend: str
    litestream: str
    snapshots: Snapshots
    transactions: int
    queries: dict[str, int]
    samples: int
    comparisons: int
    unchecked: int
    restores: int
    mean_restore_seconds: float
    errors: int
    gone: int
    wrong: int
    rss_mb: list[tuple[float, float]]
    memory: list[dict]
    l0_files_deleted: int
    holds: int
    holds_outliving_l0: int
    l1_files: int
    error_messages: list[str]
    wrong_samples: list[dict]

    def reference_rss(self) -> tuple[float, float]:
        """The (second, MB) sample compared with the last: minute 5, or mid-run if shorter."""
        at = min(REFERENCE_SECONDS, self.seconds / 2)
        return min(self.rss_mb, key=lambda sample: abs(sample[0] - at))

    def failures(self) -> list[str]:
        """Every pass criterion that does not hold (empty: the soak passed)."""
        found = []
        if self.errors:
            found.append(f"{self.errors} errors: {self.error_messages[:5]}")
        if self.wrong:
            found.append(f"{self.wrong} wrong answers: {self.wrong_samples[:5]}")
        if not self.comparisons or not all(self.queries.values()):
            found.append(f"too little was checked: queries {self.queries}, {self.comparisons} comparisons")
        if not self.holds_outliving_l0:
            found.append(f"no pinned state outlived its L0 file ({self.holds} holds, "
                         f"{self.l0_files_deleted} L0 files deleted)")
        (_, reference), (_, end) = self.reference_rss(), self.rss_mb[-1]
        if end > reference * 1.10:
            found.append(f"RSS grew from {reference:.1f} MB to {end:.1f} MB (more than 10 %)")
        return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run_soak(workdir: Path, seconds: float, version: str = "0.5.17", cache_size: int = CACHE_SIZE,
             rss_every: float = RSS_EVERY, server: SeaweedFS | None = None,
             snapshots: Snapshots = HOURLY_SNAPSHOTS) -> SoakResult:
    """Run the soak for `seconds` under `workdir` (replicating to S3 on `server` if given;
    `snapshots` short enough that retention bounds the history, if given)."""
    workdir.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    stop, paused, samples = context.Event(), context.Event(), context.Queue()
    with live_replication(workdir, version, RETENTION, LEVEL_INTERVALS, server, snapshots) as live:
        writer = Writer(live.db_path, paused)
        writer.start()
        _wait_for(lambda: live.location.newest_txid(0) > 0, "the first L0 file")
        (workdir / "truth").mkdir()
        with Shadow(live.location, workdir / "shadow", interval=0.5) as shadow:
            truth = Truth(live.binary, shadow, workdir / "truth")
            readers = context.Process(target=soak_reader.main, name="soak-readers",
                                      args=(live.url, live.location, live.env, stop, paused, samples,
                                            cache_size))
            readers.start()
            done = threading.Event()
            checker = threading.Thread(target=truth.consume, args=(samples, samples.qsize, done),
                                       name="soak-truth")
            checker.start()
            curve = _sample_rss(readers, writer, seconds, rss_every)
            stop.set()
            readers.join(timeout=180)
            if readers.is_alive():
                readers.kill()
                readers.join()
                samples.put(("done", {"readers": {"errors": 1, "messages": ["reader process hung"]}}))
            writer.stop()
            checker.join(timeout=900)
        remaining = live.location.ltx_files()
        l1_files = sum(1 for f in remaining if f.level == 1)
        vanished = sum(1 for p in shadow.seen if p.parts[1] == "0") - sum(1 for f in remaining if f.level == 0)
    tallies = truth.tallies
    harness = [f"writer: {writer.failure}"] if writer.failure else []
    harness += [f"restore: {m}" for m in truth.truth_failures]
    harness += [] if done.is_set() else ["the truth checker did not finish"]
    return SoakResult(
        seconds=seconds, backend=live.location.backend, litestream=version, snapshots=snapshots,
        transactions=writer.transactions,
        queries={role: tally.get("queries", 0) for role, tally in tallies.items()},
        samples=sum(tally.get("samples", 0) for tally in tallies.values()),
        comparisons=truth.comparisons, unchecked=truth.unchecked, restores=truth.restores,
        mean_restore_seconds=truth.restore_seconds / max(truth.restores, 1),
        errors=sum(tally.get("errors", 0) for tally in tallies.values()) + len(harness),
        gone=sum(tally.get("gone", 0) for tally in tallies.values()),
        wrong=truth.wrong, rss_mb=curve, memory=truth.memory, l0_files_deleted=vanished, l1_files=l1_files,
        holds=tallies.get("holder", {}).get("holds", 0),
        holds_outliving_l0=tallies.get("holder", {}).get("outlived_l0", 0),
        error_messages=[m for tally in tallies.values() for m in tally.get("messages", [])] + harness,
        wrong_samples=truth.wrong_samples)


def _sample_rss(readers: Any, writer: Writer, seconds: float, every: float) -> list[tuple[float, float]]:
    """RSS of the reader process every `every` seconds (and at the end) while the soak runs."""
    start = time.monotonic()
    curve: list[tuple[float, float]] = []
    next_sample = start
    while (now := time.monotonic()) < start + seconds and readers.is_alive() and writer.failure is None:
        if now >= next_sample:
            curve.append((round(now - start, 1), round(rss_mb(readers.pid), 1)))
            next_sample += every
        time.sleep(min(1.0, max(0.0, next_sample - time.monotonic())))
    if readers.is_alive():
        curve.append((round(time.monotonic() - start, 1), round(rss_mb(readers.pid), 1)))
    return curve


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def as_json(result: SoakResult) -> dict:
    return asdict(result)
