"""One replica as a set of restorable states: listing, file metadata, time lookups.

A `Replica` is shared by every connection of a process that reads the same
URL: it owns the listing, a cache of file headers/indexes, and the page maps
of recently used states. Everything it caches is derived from immutable LTX
files, so sharing is safe; only the listing changes (new files, compaction).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Sequence, TypeVar

from cachetools import LRUCache

from . import ltx
from .damage import Damage, identity
from .diskcache import DiskCache
from .errors import LTXError, ObjectNotFound, OutOfHistory, ReplicaError
from .pages import FileMeta, PageCache, PageFetcher, PageLocation, ReadAhead, cache_key, file_key, merge_page_maps
from .plan import Chains, build_chains
from .storage.base import LEVELS, Counters, LtxObject, Storage
from .timeparse import format_time, format_txid
from .verify import DEFAULT_MODE, Verifier

#: Files up to this size are fetched whole: one request gives header, index,
#: every page, and lets us verify the file checksum before any page is served
#: (verify.py). 1 MiB: at 20 ms per request a whole 1 MiB file arrives about as
#: fast as its header, tail and one page range (benchmarks/REPORT.md, issue 15).
WHOLE_FILE_LIMIT = 1024 * 1024
#: The counters (a connection's, the process's) that a request is charged to.
Charge = Sequence[Counters]
#: A large file's header is read together with the frames that follow it, up to this size.
HEAD_PREFETCH = 64 * 1024
#: How many states' page maps a replica keeps ready.
PAGE_MAPS_KEPT = 8
#: Headers fetched concurrently per round of a time search.
TIME_SEARCH_FANOUT = 16
#: Damaged files an error message names at most.
DAMAGE_NAMED = 3

T = TypeVar("T")


@dataclass(frozen=True)
class State:
    """One restorable database state and how to rebuild it."""

    txid: int
    timestamp: datetime
    level: int
    page_size: int
    commit: int
    plan: tuple[LtxObject, ...]

    @property
    def db_size(self) -> int:
        return self.page_size * self.commit

    def describe(self) -> str:
        return f"TXID {format_txid(self.txid)} ({format_time(self.timestamp)})"


@dataclass(frozen=True)
class HistoryEntry:
    """A row of `history`: a restorable state, the file that dates it, and the database size."""

    txid: int
    timestamp: datetime
    level: int
    file_size: int
    db_size: int


def check_snapshot_index(obj: LtxObject, header: ltx.Header, tail: ltx.Tail) -> None:
    """A file starting at TXID 1 holds every page 1..commit but the lock page: check its index.

    This catches a damaged index of a large snapshot read by ranges (whose
    file checksum is never seen), which could otherwise hide a page.
    """
    if header.min_txid != 1:
        return
    lock = ltx.lock_page(header.page_size)
    expected = header.commit - (1 if header.commit >= lock else 0)
    if len(tail.index) != expected or (tail.index and max(tail.index) != header.commit) or lock in tail.index:
        raise LTXError(str(obj), f"snapshot index lists {len(tail.index)} pages, expected every page "
                                 f"1..{header.commit} but the lock page")


def guess_tail_length(size: int) -> int:
    """A suffix length that usually holds the whole page index (about 1 byte per 150)."""
    return min(size, 32 * 1024 + size // 150)


class Replica:
    """Listing + metadata + states of one replica, shared across connections."""

    def __init__(self, storage: Storage, cache: PageCache, pool: Executor) -> None:
        self.storage = storage
        self.cache = cache
        self.pool = pool
        self._lock = threading.RLock()
        self._files: frozenset[LtxObject] = frozenset()
        self._chains: Chains | None = None
        self._meta: dict[LtxObject, FileMeta] = {}
        self._headers_only: dict[LtxObject, ltx.Header] = {}
        self._maps: LRUCache[tuple[LtxObject, ...], dict[int, PageLocation]] = LRUCache(PAGE_MAPS_KEPT)
        #: (txid, plan whose file vanished) -> the same state re-planned from the files that remain.
        self._replans: LRUCache[tuple[int, tuple[LtxObject, ...]], State] = LRUCache(PAGE_MAPS_KEPT * 4)
        self.fetcher = PageFetcher(storage, cache, pool, self._meta)
        #: Files found damaged: the chains leave them out (see damage.py).
        self.damage = Damage()
        self._damage_found = 0
        self.verifier = Verifier(self)
        #: `verify=` for reads that do not name a mode (a connection names its own).
        self.verify_mode = DEFAULT_MODE
        self.disk: DiskCache | None = None
        #: Everything done for this replica in this process, background polls included.
        self.counters = Counters()
        #: The URL this replica was opened with, credentials included: for reopening it
        #: (e.g. a second connection at another state); never printed (`storage.url` is).
        self.source_url = storage.url

    # -- listing ---------------------------------------------------------
    @property
    def listed(self) -> Chains | None:
        """The chains of the last listing, if any (a plain read: cheap enough for every transaction)."""
        return self._chains

    def chains_for(self, charge: Charge = ()) -> Chains:
        """The current listing's chains, listing the replica first if it never was."""
        with self._lock:
            if self._chains is not None:
                return self._chains
        return self.refresh(charge)

    def _list(self, levels: tuple[int, ...], charge: Charge) -> frozenset[LtxObject]:
        before = self.storage.counters.lists
        files = frozenset(self.storage.list_files(levels))
        for counters in (*charge, self.counters):
            counters.add(lists=max(1, self.storage.counters.lists - before))
        return files

    @property
    def files(self) -> frozenset[LtxObject]:
        """Every LTX file of the last listing."""
        self.chains_for()
        return self._files

    def adopt(self, files: Iterable[LtxObject]) -> Chains:
        """Use a listing made elsewhere (a fleet lists a whole directory at once) instead of listing."""
        return self._set_files(frozenset(files))

    def refresh(self, charge: Charge = ()) -> Chains:
        """List every level again (after compaction removed files, or at open)."""
        return self._set_files(self._list(LEVELS, charge))

    def poll(self, charge: Charge = ()) -> bool:
        """Re-list level 0 only (one request); re-list everything if level 0 alone breaks the chain.

        New files extend the history; a file whose size changed (an upload
        that was still in progress) replaces its old listing; files that
        compaction removed are dropped, which is fine as long as the chain
        to the newest state survives, else the full listing finds the
        compacted files that replace them.
        """
        previous = self.chains_for(charge).latest or 0
        listed = self._list((0,), charge)
        with self._lock:
            known = {o for o in self._files if o.level == 0}
            unchanged = {(o, o.size) for o in known} == {(o, o.size) for o in listed}
            files = (self._files - known) | listed
        if unchanged:
            return False
        candidate = build_chains(self.damage.intact(files))
        newest = max([o.max_txid for o in listed], default=0)
        if candidate.latest is not None and candidate.latest >= max(previous, newest):
            self._set_files(files)
        else:
            self.refresh(charge)
        return True

    def _set_files(self, files: frozenset[LtxObject]) -> Chains:
        if not files:
            raise ReplicaError(f"no LTX files at {self.storage.url}: the replica is empty "
                               "(Litestream has not shipped a snapshot yet) or the URL is wrong")
        self.damage.retain(files)
        chains = build_chains(self.damage.intact(files))
        if not chains.states:
            raise ReplicaError(f"{self.storage.url} holds LTX files but no snapshot to start from, "
                               f"so no state can be restored{self.damage_note(0)}")
        listed = {identity(o) for o in files}
        with self._lock:
            changed = [o for o in self._files if identity(o) not in listed]  # removed, or listed anew
            self._files = files
            self._chains = chains
        self._drop(changed)
        return chains

    def _drop(self, objs: Sequence[LtxObject]) -> None:
        """Forget what was read from files that are gone, changed or damaged."""
        with self._lock:
            for obj in objs:
                self._meta.pop(obj, None)
                self._headers_only.pop(obj, None)
        if objs:
            self.forget(objs)

    # -- damage ----------------------------------------------------------
    def mark_damaged(self, obj: LtxObject, error: LTXError) -> None:
        """Leave `obj` out of every plan from now on (until the listing shows it changed)."""
        if not self.damage.mark(obj, error):
            return
        self.counters.add(files_poisoned=1)
        with self._lock:
            self._damage_found += 1
            if self._chains is not None:
                self._chains = build_chains(self.damage.intact(self._files))
            # its metadata stays (pages being fetched still need it); `metas` refuses it
            self._headers_only.pop(obj, None)
        self.forget([obj])

    @property
    def damage_count(self) -> int:
        """How many files were found damaged so far (grows; a cheap change check)."""
        return self._damage_found

    def _around_damage(self, work: Callable[[], T]) -> T:
        """Run `work`; each time it finds a file damaged, run it again on chains that avoid it.

        Ends: every round that fails marks one more listed file, and the listing is finite.
        """
        while True:
            found = self._damage_found
            try:
                return work()
            except LTXError:
                if self._damage_found == found:
                    raise

    def damage_note(self, txid: int) -> str:
        """'; damaged: L0/… (problem)' for damaged files that could have led to `txid` (0: any)."""
        hits = [(o, e) for o, e in self.damage.found() if not txid or o.min_txid <= txid]
        if not hits:
            return ""
        named = "; ".join(f"{e}" for _, e in hits[:DAMAGE_NAMED])
        more = f" and {len(hits) - DAMAGE_NAMED} more" if len(hits) > DAMAGE_NAMED else ""
        return f"; damaged: {named}{more}"

    # -- file metadata ---------------------------------------------------
    def metas(self, objs: Sequence[LtxObject], charge: Charge = ()) -> list[FileMeta]:
        """Header + page index of each file, fetched concurrently for the ones not cached.

        A file found damaged raises its error here, so no page of it is served again.
        """
        with self._lock:
            todo = [o for o in dict.fromkeys(objs) if o not in self._meta]
        self.run_jobs([(self._load_meta, o) for o in todo], charge)
        if self._damage_found:
            self._refuse_damaged(objs)
        with self._lock:
            return [self._meta[o] for o in objs]

    def _refuse_damaged(self, objs: Iterable[LtxObject]) -> None:
        for obj in objs:
            problem = self.damage.problem(obj)
            if problem is not None:
                raise LTXError(problem.name, problem.problem)

    def headers(self, objs: Sequence[LtxObject], charge: Charge = ()) -> list[ltx.Header]:
        """Headers only: small files are still fetched whole (same one request, more value)."""
        with self._lock:
            todo = [o for o in dict.fromkeys(objs) if o not in self._meta and o not in self._headers_only]
        self.run_jobs([(self._load_header, o) for o in todo], charge)
        with self._lock:
            return [self._meta[o].header if o in self._meta else self._headers_only[o] for o in objs]

    def run_jobs(self, jobs: list[tuple[Callable[[LtxObject, Charge], None], LtxObject]], charge: Charge) -> None:
        """Run per-file work concurrently: one round trip however many files."""
        if len(jobs) == 1:
            work, obj = jobs[0]
            work(obj, charge)
        elif jobs:
            futures = [self.pool.submit(work, obj, charge) for work, obj in jobs]
            errors = [f.exception() for f in futures]  # wait for all: every damaged file is found
            first = next((e for e in errors if e is not None), None)
            if first is not None:
                raise first

    def read_range(self, obj: LtxObject, offset: int, length: int, charge: Charge = ()) -> bytes:
        return self._get(obj, offset, length, charge)

    def read_object(self, obj: LtxObject, charge: Charge = ()) -> bytes:
        return self._get(obj, 0, None, charge)

    def _get(self, obj: LtxObject, offset: int, length: int | None, charge: Charge) -> bytes:
        """One GET (a range, or the whole file when length is None), charged to the callers' counters."""
        began = time.monotonic()
        data = self.storage.read_all(obj) if length is None else self.storage.read_range(obj, offset, length)
        waited = time.monotonic() - began
        for counters in (*charge, self.counters):
            counters.add(gets=1, bytes_fetched=len(data), network_seconds=waited)
        return data

    def _load_header(self, obj: LtxObject, charge: Charge) -> None:
        self._checked(obj, self._read_header, charge)

    def _load_meta(self, obj: LtxObject, charge: Charge) -> None:
        self._checked(obj, self._read_meta, charge)

    def _checked(self, obj: LtxObject, read: Callable[[LtxObject, Charge], None], charge: Charge) -> None:
        """Read from a file unless it is known damaged; a structure or checksum error marks it so."""
        self._refuse_damaged([obj])
        try:
            read(obj, charge)
        except LTXError as exc:
            self.mark_damaged(obj, exc)
            raise

    def _read_header(self, obj: LtxObject, charge: Charge) -> None:
        if obj.size <= WHOLE_FILE_LIMIT or (self.disk and self.disk.get_meta(self.file_key(obj))):
            self._load_meta(obj, charge)
            return
        header = ltx.Header.parse(self._get(obj, 0, ltx.HEADER_SIZE, charge), str(obj))
        self.check_header(obj, header)
        with self._lock:
            self._headers_only[obj] = header

    def _read_meta(self, obj: LtxObject, charge: Charge) -> None:
        """Header + index of one file: from the disk cache, one whole GET, or header + tail ranges."""
        name = str(obj)
        stored = self.disk.get_meta(self.file_key(obj)) if self.disk else None
        if stored is None and obj.size <= WHOLE_FILE_LIMIT:
            self._read_whole(obj, charge)
            return
        if stored is not None:
            header = ltx.Header.parse(stored[0], name)
            tail = ltx.parse_tail(stored[1], obj.size, name)
        else:
            # The header comes with the first frames (page 1 and the schema pages
            # usually): same round trip, and the first read needs no other.
            head_future = self.pool.submit(self._get, obj, 0, min(HEAD_PREFETCH, obj.size), charge)
            tail, tail_bytes = self._read_tail(obj, charge)
            head = head_future.result()
            header = ltx.Header.parse(head, name)
            self.check_header(obj, header)
            check_snapshot_index(obj, header, tail)
            if self.disk:
                self.disk.put_meta(self.file_key(obj), head[:ltx.HEADER_SIZE], tail_bytes)
            with self._lock:
                self._meta[obj] = FileMeta(obj, header, tail)
            self.fetcher.keep_range(obj, 0, head)
            return
        check_snapshot_index(obj, header, tail)
        with self._lock:
            self._meta[obj] = FileMeta(obj, header, tail)

    def read_whole(self, obj: LtxObject, charge: Charge = ()) -> None:
        """Fetch one file whole and verify it (see `_read_whole`); a failure marks it damaged."""
        self._checked(obj, self._read_whole, charge)

    def _read_whole(self, obj: LtxObject, charge: Charge) -> None:
        """One GET: header, index and every page (all cached), the file checksum verified."""
        name = str(obj)
        data = self._get(obj, 0, None, charge)
        decoded = ltx.decode_file(data, name)
        header, tail = decoded.header, decoded.tail
        self.check_header(obj, header)
        check_snapshot_index(obj, header, tail)
        for pgno, entry in tail.index.items():
            loc = PageLocation(obj, entry.offset, entry.size)
            self.cache.put(cache_key(self.storage, loc), decoded.pages[pgno])
        if self.disk:
            self.disk.put_frames(self.file_key(obj), ((e.offset, data[e.offset:e.offset + e.size])
                                                      for e in tail.index.values()))
            self.disk.put_meta(self.file_key(obj), data[:ltx.HEADER_SIZE], data[tail.index_offset:])
        meta = FileMeta(obj, header, tail)
        with self._lock:
            self._meta[obj] = meta
        self.verifier.record(meta, charge)

    def _read_tail(self, obj: LtxObject, charge: Charge) -> tuple[ltx.Tail, bytes]:
        """The page index (and the bytes it was parsed from, from the index on)."""
        length = guess_tail_length(obj.size)
        for _ in range(2):
            data = self._get(obj, obj.size - length, length, charge)
            try:
                tail = ltx.parse_tail(data, obj.size, str(obj))
            except ltx.NeedMoreBytes as more:
                if more.needed > obj.size:
                    raise LTXError(str(obj), f"page index claims {more.needed} bytes, file has {obj.size}") from None
                length = more.needed
                continue
            return tail, data[tail.index_offset - (obj.size - length):]
        raise LTXError(str(obj), "page index could not be read")

    def file_key(self, obj: LtxObject) -> str:
        return file_key(self.storage, obj)

    def attach_disk(self, disk: DiskCache | None) -> None:
        """Use (or stop using) a persistent cache for indexes and frames."""
        self.disk = disk
        self.fetcher.disk = disk

    @staticmethod
    def check_header(obj: LtxObject, header: ltx.Header) -> None:
        if (header.min_txid, header.max_txid) != (obj.min_txid, obj.max_txid):
            raise LTXError(str(obj), f"header says TXIDs {header.min_txid:016x}-{header.max_txid:016x}, "
                                     "which does not match the file name")

    # -- states ----------------------------------------------------------
    def state(self, txid: int, charge: Charge = ()) -> State:
        """The state at exactly `txid` from intact files, or OutOfHistory naming what is available."""
        return self._around_damage(lambda: self._state(txid, charge))

    def _state(self, txid: int, charge: Charge) -> State:
        chains = self.chains_for(charge)
        if txid not in chains:
            raise OutOfHistory(f"TXID {format_txid(txid)} is not a restorable state of "
                               f"{self.storage.url}{self.damage_note(txid)}; {self.describe_range()}")
        plan = chains.plan(txid)
        finest = chains.finest(txid)
        # One concurrent round: every planned file's index (needed for the first
        # read anyway) and the header that dates the state.
        with self._lock:
            dating_todo = [] if finest in plan or finest in self._meta or finest in self._headers_only else [finest]
            meta_todo = [o for o in plan if o not in self._meta]
        self.run_jobs([(self._load_meta, o) for o in meta_todo] + [(self._load_header, o) for o in dating_todo],
                       charge)
        last = self.metas(plan[-1:], charge)[0].header
        dating = self.headers([finest], charge)[0]
        return State(txid, dating.timestamp, finest.level, last.page_size, last.commit, plan)

    def latest(self, charge: Charge = ()) -> State:
        """The newest state whose files read cleanly.

        A file that fails its checks (cut short, corrupt, or listed while a
        store without atomic uploads is still writing it) is left out and the
        newest state the other files reach is returned; the file is tried again
        once a listing shows it changed.
        """
        return self._around_damage(lambda: self._state(self._newest(charge), charge))

    def _newest(self, charge: Charge) -> int:
        newest = self.chains_for(charge).latest
        if newest is None:
            raise ReplicaError(f"no state of {self.storage.url} can be restored{self.damage_note(0)}")
        return newest

    def state_at(self, when: datetime, charge: Charge = ()) -> State:
        """The last state whose timestamp is at or before `when` (timestamps of the finest files)."""
        return self._around_damage(lambda: self._state_at(when, charge))

    def _state_at(self, when: datetime, charge: Charge) -> State:
        """Timestamps grow with TXIDs, so a k-ary search fetches only a few headers
        per round instead of every one."""
        chains = self.chains_for(charge)
        states = chains.states
        lo, hi = -1, len(states)  # time(states[lo]) <= when < time(states[hi])
        while hi - lo > 1:
            count = hi - lo - 1
            probes = sorted({lo + 1 + count * k // TIME_SEARCH_FANOUT for k in range(TIME_SEARCH_FANOUT)})
            stamps = self.headers([chains.finest(states[i]) for i in probes], charge)
            for i, header in zip(probes, stamps):
                if header.timestamp <= when:
                    lo = i
                else:
                    hi = i
                    break
        if lo < 0:
            raise OutOfHistory(f"no state of {self.storage.url} at or before {format_time(when)}; "
                               f"{self.describe_range()}")
        return self._state(states[lo], charge)

    def history(self, charge: Charge = ()) -> list[HistoryEntry]:
        """Every state the intact files rebuild, oldest first.

        The header and page index of every file a state's plan uses or its
        time comes from is read (once per file), so a file cut short or
        corrupt in its structure is found and its states left out here rather
        than failing the first read of them.
        """
        return self._around_damage(lambda: self._history(charge))

    def _history(self, charge: Charge) -> list[HistoryEntry]:
        chains = self.chains_for(charge)
        finest = [chains.finest(t) for t in chains.states]
        needed = set(finest).union(*(chains.plan(t) for t in chains.states))
        self.metas(sorted(needed), charge)
        headers = self.headers(finest, charge)
        return [HistoryEntry(t, h.timestamp, f.level, f.size, h.page_size * h.commit)
                for t, f, h in zip(chains.states, finest, headers)]

    def describe_range(self) -> str:
        """'available states: TXID a (time) to TXID b (time)', for error messages."""
        return self._around_damage(self._describe_range)

    def _describe_range(self) -> str:
        chains = self.chains_for()
        if not chains.states:
            return "no state can be restored"
        ends = [chains.states[0], chains.states[-1]]
        first, last = self.headers([chains.finest(t) for t in ends])
        return (f"available states: TXID {format_txid(ends[0])} ({format_time(first.timestamp)}) "
                f"to TXID {format_txid(ends[1])} ({format_time(last.timestamp)})")

    # -- pages -----------------------------------------------------------
    def page_map(self, state: State, charge: Charge = ()) -> dict[int, PageLocation]:
        """pgno -> frame location for a state, built from the longest cached prefix plan."""
        with self._lock:
            cached = self._maps.get(state.plan)
            if cached is not None:
                return cached
            prefix: tuple[LtxObject, ...] = ()
            for plan in self._maps.keys():
                if len(prefix) < len(plan) < len(state.plan) and state.plan[:len(plan)] == plan:
                    prefix = plan
            base = self._maps.get(prefix) if prefix else None
        metas = self.metas(state.plan[len(prefix):], charge)
        built = merge_page_maps(metas, state.commit, base)
        with self._lock:
            self._maps[state.plan] = built
        return built

    def forget(self, objs: Iterable[LtxObject]) -> None:
        """Drop page maps that use files found to be gone, so the next plan avoids them."""
        gone = set(objs)
        with self._lock:
            for plan in [p for p in self._maps.keys() if gone.intersection(p)]:
                del self._maps[plan]
        self.fetcher.forget(gone)

    def read_pages(self, state: State, pgnos: Iterable[int], charge: Charge = (),
                   readahead: ReadAhead | None = None, verify: str | None = None) -> dict[int, bytes]:
        """Decoded pages of `state`; a pgno missing from the result was never written (zeros).

        `verify` (default: the replica's `verify_mode`) says which files must
        be verified before their pages are served (verify.py). If a planned
        file vanished (compaction or retention removed it), list again, once;
        if one turns out damaged, leave it out. Either way the same TXID is
        rebuilt from the files that remain, or OutOfHistory names why not.
        """
        pgnos = list(pgnos)
        with self._lock:
            state = self._replans.get((state.txid, state.plan), state)
        relisted = False
        for _ in range(len(self._files) + 2):  # each round drops at least one planned file
            try:
                return self._read_planned(state, pgnos, charge, readahead, verify or self.verify_mode)
            except ObjectNotFound:
                if relisted:
                    raise
                relisted = True
                self.refresh(charge)
                self.forget(set(state.plan) - self.files)
            except LTXError as exc:
                hit = next((o for o in state.plan if str(o) == exc.name), None)
                if hit is None:
                    raise
                self.mark_damaged(hit, exc)
            replanned = self.state(state.txid, charge)  # OutOfHistory if the state itself is gone
            with self._lock:  # connections pinned to the old plan use the new one from now on
                self._replans[(state.txid, state.plan)] = replanned
            state = replanned
        raise ReplicaError(f"TXID {format_txid(state.txid)} of {self.storage.url} could not be read"
                           f"{self.damage_note(state.txid)}")

    def _read_planned(self, state: State, pgnos: list[int], charge: Charge,
                      readahead: ReadAhead | None, verify: str) -> dict[int, bytes]:
        page_map = self.page_map(state, charge)
        wanted = {p: page_map[p] for p in pgnos if p in page_map}
        return self.serve(wanted, charge, readahead, verify)

    def serve(self, wanted: dict[int, PageLocation], charge: Charge = (), readahead: ReadAhead | None = None,
              verify: str | None = None) -> dict[int, bytes]:
        """The pages at these locations, once their files passed what `verify` asks (verify.py)."""
        metas = self.metas(list(dict.fromkeys(loc.obj for loc in wanted.values())), charge)
        unverified = self.verifier.gate(metas, verify or self.verify_mode, charge)
        pages = self.fetcher.pages(wanted, (*charge, self.counters), readahead)
        if unverified:
            served = sum(len(pages[p]) for p, loc in wanted.items() if loc.obj in unverified and p in pages)
            for counters in (*charge, self.counters):
                counters.add(bytes_served_unverified=served)
        return pages
