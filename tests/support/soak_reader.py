"""The reader side of the live soak, in a process of its own so that its RSS is the VFS's.

Three threads share the process-wide VFS: a follower at `latest`, a holder that
pins the last state before each writer pause (the newest L1 file will end there,
and retention later deletes the L0 files its first plan used) and keeps reading
it, and a traveller that jumps between restorable TXIDs, times and `latest`.
Every (TXID, answer) pair they sample goes to the parent, which compares it with
`litestream restore`; errors are classified here, while the listing that decides
whether a state is really gone is fresh.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import apsw

from litestream_vfs.storage.base import LtxObject

from .mallinfo import mallinfo
from .replicas import ReplicaLocation

#: Aggregates a follower can run many times a second; they change with every commit.
QUICK = ("SELECT (SELECT count(*) FROM ticks), (SELECT coalesce(max(n), 0) FROM ticks),"
         " (SELECT total(length(note)) FROM ticks), (SELECT total(UnitPrice * TrackId) FROM Track)")
#: Tables hashed row by row by the `full` answer (every page of each b-tree is read).
FULL_TABLES = ("ticks", "bulk", "Track", "InvoiceLine")
#: How the VFS says a TXID (first) or a time (second) has no retained state.
GONE = ("not a restorable state", "no state of ")
HOLD_SECONDS = 70.0
HOLD_EVERY = 3.0
FOLLOW_SAMPLE_EVERY = 3.0
TRAVEL_EVERY = 0.5
MEMORY_EVERY = 30.0


def answer(connection: apsw.Connection, kind: str) -> str:
    """A short, exact digest of what the state holds (`quick` or `full`)."""
    if kind == "quick":
        return repr(connection.execute(QUICK).fetchall())
    digest = hashlib.sha256()
    for table in FULL_TABLES:
        for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
            digest.update(repr(row).encode())
    return digest.hexdigest()[:20]


def txid_of(connection: apsw.Connection) -> int:
    (txid,), = connection.execute("PRAGMA litestream_txid").fetchall()
    return int(txid, 16)


def read_state(connection: apsw.Connection, kind: str) -> tuple[int, str, str]:
    """(TXID, time, answer) read in one read transaction, so all three are the same state."""
    with connection:
        got = answer(connection, kind)
        txid = txid_of(connection)
        (at,), = connection.execute("PRAGMA litestream_time").fetchall()
    return txid, at, got


@dataclass
class Tally:
    """What one reader thread did; sent to the parent at the end."""

    queries: int = 0
    samples: int = 0
    errors: int = 0
    gone: int = 0
    #: Holder only: pinned states read to the end, and those whose L0 file was deleted meanwhile.
    holds: int = 0
    outlived_l0: int = 0
    messages: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.messages) < 20:
            self.messages.append(message)


class Readers:
    """The reader threads of one soak process, with what they share."""

    def __init__(self, url: str, files: Callable[[], list[LtxObject]], send: Callable[[tuple], None],
                 stop: Any, paused: Any, seed: int = 14) -> None:
        self.url, self.files, self.send, self.stop, self.paused = url, files, send, stop, paused
        self.tallies = {name: Tally() for name in ("follower", "holder", "traveller")}
        #: (TXID, time) of states the follower read, newest last: targets for time travel.
        self.seen: collections.deque[tuple[int, str]] = collections.deque(maxlen=600)
        self.rng = random.Random(seed)

    def run(self) -> dict[str, dict]:
        threads = [threading.Thread(target=self._guarded, args=(name,), name=f"soak-{name}")
                   for name in self.tallies]
        threads.append(threading.Thread(target=self._report_memory, name="soak-memory"))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {name: vars(tally) for name, tally in self.tallies.items()}

    def _report_memory(self) -> None:
        started = time.monotonic()
        while True:
            self.send(("memory", {"second": round(time.monotonic() - started, 1), **memory()}))
            if self.stop.wait(MEMORY_EVERY):
                return

    def _guarded(self, name: str) -> None:
        """Run one role; anything it did not expect is an error of that role, never lost."""
        from litestream_vfs.connect import connect

        connection = connect(self.url)
        try:
            getattr(self, name)(connection, self.tallies[name])
        except BaseException as exc:  # noqa: BLE001 - reported as the role's error
            self.tallies[name].error(f"{name} died: {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def states(self) -> set[int]:
        """The restorable TXIDs of the replica right now."""
        return restorable(self.files())

    def sample(self, tally: Tally, role: str, txid: int, kind: str, got: str) -> None:
        tally.samples += 1
        self.send(("sample", role, txid, kind, got))

    def failed(self, tally: Tally, txid: int | None, exc: Exception, doing: str, by_time: bool = False) -> None:
        """A clean error for a state retention removed is `gone`; anything else is an error.

        Gone means: no restorable TXID `txid` (by TXID), or none at or before it (by time:
        the state at a time is the last one at or before it).
        """
        message = f"{doing} (TXID {txid or 0:016x}): {type(exc).__name__}: {exc}"
        states = self.states()
        really_gone = txid is not None and (not any(s <= txid for s in states) if by_time else txid not in states)
        if really_gone and GONE[by_time] in str(exc):
            tally.gone += 1
        else:
            tally.error(message)

    def moved_past_removal(self, connection: apsw.Connection, tally: Tally, target: int | None,
                           resolved: int | None, exc: Exception) -> bool:
        """At a time: retention removed the state the time was resolved to while a transaction
        read it (a clean error naming that TXID, which a fresh listing confirms gone). That
        transaction cannot change state halfway; the next one must read the state at that
        time now, or fail as any travel by time may. True if this was such a removal."""
        if resolved is None or f"TXID {resolved:016x} is {GONE[0]}" not in str(exc) or resolved in self.states():
            return False
        try:
            read, _, got = read_state(connection, "quick")
        except (apsw.Error, ValueError) as again:  # e.g. retention removed every state up to that time
            self.failed(tally, target, again, f"at the time after {resolved:016x} was removed", by_time=True)
            return True
        if read == resolved or read > target:
            tally.error(f"at the time of TXID {target:016x} after {resolved:016x} was removed, read {read:016x}")
        else:
            tally.gone += 1
            self.sample(tally, "traveller", read, "quick", got)
        return True

    def follower(self, connection: apsw.Connection, tally: Tally) -> None:
        last, next_sample = 0, 0.0
        while not self.stop.is_set():
            try:
                txid, at, got = read_state(connection, "quick")
            except (apsw.Error, ValueError) as exc:
                tally.error(f"following latest after TXID {last:016x}: {type(exc).__name__}: {exc}")
                time.sleep(0.5)
                continue
            tally.queries += 1
            if txid < last:
                tally.error(f"latest went backwards: TXID {txid:016x} after {last:016x}")
            if txid > last:
                self.seen.append((txid, at))
                last = txid
            if time.monotonic() >= next_sample:
                self.sample(tally, "follower", txid, "quick", got)
                next_sample = time.monotonic() + FOLLOW_SAMPLE_EVERY
            time.sleep(0.05)

    def holder(self, connection: apsw.Connection, tally: Tally) -> None:
        while not self.stop.is_set():
            if not self.paused.wait(1.0):
                continue
            self.stop.wait(2.0)  # let the writer's last commit ship
            txid = max(self.states(), default=0)
            self._hold(connection, tally, txid)
            while self.paused.is_set() and not self.stop.is_set():
                time.sleep(0.5)  # the next pause, not the rest of this one

    def _hold(self, connection: apsw.Connection, tally: Tally, txid: int) -> None:
        """Read one pinned state until well after its L0 files are compacted and deleted."""
        until = time.monotonic() + HOLD_SECONDS
        first = None
        try:
            connection.execute(f"PRAGMA litestream_txid = '{txid:016x}'")
            while time.monotonic() < until and not self.stop.is_set():
                connection.execute("PRAGMA shrink_memory")  # SQLite's own cache must not answer
                read, _, got = read_state(connection, "full")
                tally.queries += 1
                if read != txid:
                    tally.error(f"pinned TXID {txid:016x} but read {read:016x}")
                elif first is not None and got != first:
                    tally.error(f"pinned TXID {txid:016x} changed its answer")
                first = got if first is None else first
                self.sample(tally, "holder", read, "full", got)
                self.stop.wait(HOLD_EVERY)
        except (apsw.Error, ValueError) as exc:
            self.failed(tally, txid, exc, "holding a pinned state")
            return
        if self.stop.is_set():
            return  # cut short: retention may not have run yet
        tally.holds += 1
        if not any(f.level == 0 and f.max_txid == txid for f in self.files()):
            tally.outlived_l0 += 1

    def traveller(self, connection: apsw.Connection, tally: Tally) -> None:
        moves = 0
        while not self.stop.wait(TRAVEL_EVERY):
            moves += 1
            kind = "full" if moves % 4 == 0 else "quick"
            move = self.rng.choice(("txid", "txid", "time", "latest"))
            target = resolved = None  # `latest` is never gone
            try:
                if move == "txid":
                    # Any restorable state, also one newer than the process has listed yet.
                    states = sorted(self.states())
                    if not states:
                        continue
                    target = self.rng.choice(states)
                    connection.execute(f"PRAGMA litestream_txid = '{target:016x}'")
                elif move == "time" and self.seen:
                    target, at = self.rng.choice(tuple(self.seen))
                    connection.execute(f"PRAGMA litestream_time = '{at}'")
                    resolved = txid_of(connection)
                else:
                    connection.execute("PRAGMA litestream_time = 'latest'")
                read, _, got = read_state(connection, kind)
            except (apsw.Error, ValueError, IndexError) as exc:
                if not self.moved_past_removal(connection, tally, target, resolved, exc):
                    self.failed(tally, target, exc, f"travelling by {move}", by_time=move == "time")
                continue
            tally.queries += 1
            if target is not None and (read != target if move == "txid" else read > target):
                tally.error(f"travelled by {move} to TXID {target:016x} but read {read:016x}")
            if moves % 2 == 0:
                self.sample(tally, "traveller", read, kind, got)


def memory() -> dict[str, float]:
    """Where the reader's memory is: glibc malloc's bytes in use and free but held (all
    arenas; growth of the latter is fragmentation), SQLite's allocator, Python's blocks."""
    found: dict[str, float] = {"sqlite_mb": round(apsw.memory_used() / 2**20, 1),
                               "python_blocks": sys.getallocatedblocks()}
    info = mallinfo()
    if info is not None:
        found.update(malloc_used_mb=round((info.uordblks + info.hblkhd) / 2**20, 1),
                     malloc_free_mb=round(info.fordblks / 2**20, 1))
    return found


def restorable(files: Iterable[LtxObject]) -> set[int]:
    """TXIDs reached by a contiguous chain of files from TXID 0 (as `litestream restore` needs)."""
    reached = {0}
    for file in sorted(files, key=lambda f: (f.min_txid, f.max_txid)):
        if file.min_txid - 1 in reached:
            reached.add(file.max_txid)
    return reached - {0}


def main(url: str, location: ReplicaLocation, env: dict[str, str], stop: Any, paused: Any, queue: Any,
         cache_size: int) -> None:
    """Child process entry point: read until `stop`, then send ("done", tallies)."""
    import litestream_vfs

    os.environ.update(env)
    litestream_vfs.register(cache_size=cache_size)
    readers = Readers(url, location.ltx_files, queue.put, stop, paused)
    queue.put(("done", readers.run()))
