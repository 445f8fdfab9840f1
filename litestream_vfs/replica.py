"""One replica as a set of restorable states: the states, their page maps, their pages.

A `Replica` is shared by every connection of a process that reads the same
URL. It composes the owners of its parts: `Lister` (the published listing),
`MetaStore` (file headers and indexes), `PageFetcher` (pages through the
caches). A `State` carries the metadata of every file in its plan, so a
reader holding a state can always address its pages; if a planned file has
vanished from the store (compaction, retention), the state is re-planned from
the current listing once, else it fails with "not a restorable state".
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Iterable, Sequence, TypeVar

from cachetools import LRUCache

from . import ltx
from .damage import Damage
from .diskcache import DiskCache
from .errors import LTXError, ObjectNotFound, ReplicaError
from .executors import Executors
from .fetcher import PageFetcher
from .filemeta import WHOLE_FILE_LIMIT, MetaStore, Reader, check_header, check_snapshot_index
from .listing import Lister, Listing, damage_note
from .pagecache import PageCache
from .pages import FileMeta, PageLocation, PageMap
from .plan import Chains
from .readahead import ReadAhead
from .states import HistoryEntry, State, StateQueries
from .storage.base import Counters, LtxObject, Storage
from .timeparse import format_txid
from .verify import DEFAULT_MODE, Verifier

__all__ = ["Charge", "HistoryEntry", "Replica", "State", "WHOLE_FILE_LIMIT", "check_header",
           "check_snapshot_index"]

#: The counters (a connection's, the process's) that a request is charged to.
Charge = Sequence[Counters]
#: How many states' page maps a replica keeps ready.
PAGE_MAPS_KEPT = 8

T = TypeVar("T")


class Replica(StateQueries):
    """Listing + metadata + states of one replica, shared across connections."""

    def __init__(self, storage: Storage, cache: PageCache, executors: Executors) -> None:
        self.storage = storage
        self.cache = cache
        self.executors = executors
        #: Everything done for this replica in this process, background polls included.
        self.counters = Counters()
        self.reader = Reader(storage, self.counters)
        self.fetcher = PageFetcher(storage, cache, executors)
        #: Files found damaged: the chains leave them out (see damage.py).
        self.damage = Damage()
        self._damage_found = 0
        self.verifier = Verifier(self)
        #: `verify=` for reads that do not name a mode (a connection names its own).
        self.verify_mode = DEFAULT_MODE
        self.meta = MetaStore(self.reader, cache, self.fetcher, executors, self.damage, self.mark_damaged,
                              self.verifier.record)
        self.lister = Lister(storage, self.counters, self.damage, self._published)
        self._lock = threading.Lock()
        self._epoch = 0
        self._maps: LRUCache[tuple[LtxObject, ...], PageMap] = LRUCache(PAGE_MAPS_KEPT)
        #: A state whose file vanished -> the same TXID re-planned from the files that remain,
        #: kept exactly as long as a connection still holds the old state.
        self._replans: weakref.WeakKeyDictionary[State, State] = weakref.WeakKeyDictionary()
        #: The URL this replica was opened with, credentials included: for reopening it
        #: (e.g. a second connection at another state); never printed (`storage.url` is).
        self.source_url = storage.url

    # -- listing ---------------------------------------------------------
    def _published(self, previous: Listing | None, listing: Listing) -> None:
        """A new listing: forget files that left it; a replica whose history went backwards was
        re-created at the same URL, so nothing known about the old one may be used again."""
        if previous is not None and listing.recreated_since(previous):
            with self._lock:
                self._epoch += 1
                self._maps.clear()
                self._replans.clear()
            self.meta.clear()
        else:
            self.meta.retain(listing.files)
            self.verifier.retain(listing.files)
            with self._lock:
                for plan in [p for p in self._maps.keys() if not listing.files.issuperset(p)]:
                    del self._maps[plan]

    @property
    def listed(self) -> Listing | None:
        """The last published listing, if any (no request)."""
        return self.lister.current

    def chains_for(self, charge: Charge = ()) -> Chains:
        """The current listing's chains, listing the replica first if it never was."""
        return self.lister.get(charge).chains

    @property
    def files(self) -> frozenset[LtxObject]:
        """Every LTX file of the current listing."""
        return self.lister.get().files

    def adopt(self, files: Iterable[LtxObject]) -> Chains:
        """Use a listing made elsewhere (a fleet lists a whole directory at once) instead of listing."""
        return self.lister.adopt(frozenset(files)).chains

    def refresh(self, charge: Charge = ()) -> Chains:
        """List every level again (after compaction removed files, or at open)."""
        return self.lister.refresh(charge).chains

    def poll(self, charge: Charge = ()) -> bool:
        return self.lister.poll(charge)

    # -- damage ----------------------------------------------------------
    def mark_damaged(self, obj: LtxObject, error: LTXError) -> None:
        """Leave `obj` out of every plan from now on (until the listing shows it changed)."""
        if not self.damage.mark(obj, error):
            return
        self.counters.add(files_poisoned=1)
        with self._lock:
            self._damage_found += 1
            for plan in [p for p in self._maps.keys() if obj in p]:
                del self._maps[plan]
        self.meta.forget([obj])
        self.lister.republish()

    def _around_damage(self, work: Callable[[], T]) -> T:
        """Run `work`; each time it finds a file damaged, run it again on chains that avoid it;
        if a listed file has vanished (compaction, retention), list again and run it once more.

        Ends: every round that fails marks one more listed file, and the listing is finite.
        """
        relisted = False
        while True:
            found = self._damage_found
            try:
                return work()
            except ObjectNotFound:
                if relisted:
                    raise
                relisted = True
                self.refresh()
            except LTXError:
                if self._damage_found == found:
                    raise

    @property
    def damage_count(self) -> int:
        """How many files were found damaged so far (grows; a cheap change check)."""
        return self._damage_found

    def damage_note(self, txid: int) -> str:
        """'; damaged: L0/… (problem)' for damaged files that could have led to `txid` (0: any)."""
        return damage_note(self.damage, txid)

    # -- file metadata ---------------------------------------------------
    def metas(self, objs: Sequence[LtxObject], charge: Charge = ()) -> list[FileMeta]:
        return self.meta.metas(objs, charge)

    def headers(self, objs: Sequence[LtxObject], charge: Charge = ()) -> list[ltx.Header]:
        return self.meta.headers(objs, charge)

    def read_whole(self, obj: LtxObject, charge: Charge = ()) -> None:
        """Fetch one file whole and verify it; a failure marks it damaged."""
        self.meta.load_whole(obj, charge)

    def read_range(self, obj: LtxObject, offset: int, length: int, charge: Charge = ()) -> bytes:
        return self.reader.get(obj, offset, length, charge)

    def read_object(self, obj: LtxObject, charge: Charge = ()) -> bytes:
        return self.reader.get(obj, 0, None, charge)

    def attach_disk(self, disk: DiskCache | None) -> None:
        """Use (or stop using) a persistent cache for indexes and frames."""
        self.meta.disk = disk
        self.fetcher.disk = disk

    @property
    def disk(self) -> DiskCache | None:
        return self.meta.disk

    check_header = staticmethod(check_header)

    # -- pages -----------------------------------------------------------
    def page_map(self, state: State, charge: Charge = ()) -> PageMap:
        """pgno -> frame location for a state, extending the longest cached prefix of its plan."""
        with self._lock:
            cached = self._maps.get(state.plan)
            if cached is not None:
                return cached
            prefix: tuple[LtxObject, ...] = ()
            for plan in self._maps.keys():
                if len(prefix) < len(plan) < len(state.plan) and state.plan[:len(plan)] == plan:
                    prefix = plan
            base = self._maps.get(prefix) if prefix else None
        metas = state.metas or tuple(self.metas(state.plan, charge))
        built = PageMap.build(metas[len(prefix):], state.commit, base)
        with self._lock:
            if state.epoch == self._epoch:
                self._maps[state.plan] = built
        return built

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
            while (newer := self._replans.get(state)) is not None:
                state = newer
        relisted = False
        for _ in range(len(self.files) + 2):  # each round drops at least one planned file
            self._check_epoch(state)
            try:
                return self._read_planned(state, pgnos, charge, readahead, verify or self.verify_mode)
            except ObjectNotFound:
                if relisted:
                    raise
                relisted = True
                self.refresh(charge)
            except LTXError as exc:
                hit = next((o for o in state.plan if str(o) == exc.name), None)
                if hit is None:
                    raise
                self.mark_damaged(hit, exc)
            self._check_epoch(state)
            replanned = self.state(state.txid, charge)  # OutOfHistory if the state itself is gone
            if replanned != state:
                with self._lock:  # connections pinned to the old plan use the new one from now on
                    self._replans[state] = replanned
            state = replanned
        raise ReplicaError(f"TXID {format_txid(state.txid)} of {self.storage.url} could not be read"
                           f"{self.damage_note(state.txid)}")

    def _check_epoch(self, state: State) -> None:
        if state.epoch != self._epoch:
            raise ReplicaError(f"{self.storage.url} was re-created since TXID {format_txid(state.txid)} was "
                               "opened: that state no longer exists; reopen the connection")

    def _read_planned(self, state: State, pgnos: list[int], charge: Charge,
                      readahead: ReadAhead | None, verify: str) -> dict[int, bytes]:
        page_map = self.page_map(state, charge)
        wanted = {p: loc for p in pgnos if (loc := page_map.get(p)) is not None}
        return self.serve(wanted, charge, readahead, verify)

    def serve(self, wanted: dict[int, PageLocation], charge: Charge = (), readahead: ReadAhead | None = None,
              verify: str | None = None) -> dict[int, bytes]:
        """The pages at these locations, once their files passed what `verify` asks (verify.py):
        the one place where pages are about to be served from a file."""
        metas = list({id(loc.meta): loc.meta for loc in wanted.values()}.values())
        unverified: set[LtxObject] = set()
        if not self.verifier.all_verified(metas):  # the warm path: one dict read per file
            self._refuse_damaged(metas)  # (a verified file is never a damaged one)
            unverified = self.verifier.gate(metas, verify or self.verify_mode, charge)
        pages = self.fetcher.pages(wanted, (*charge, self.counters), readahead)
        if unverified:
            served = sum(len(pages[p]) for p, loc in wanted.items() if loc.obj in unverified and p in pages)
            for counters in (*charge, self.counters):
                counters.add(bytes_served_unverified=served)
        return pages

    def _refuse_damaged(self, metas: Iterable[FileMeta]) -> None:
        if self._damage_found:
            for meta in metas:
                problem = self.damage.problem(meta.obj)
                if problem is not None:
                    raise LTXError(problem.name, problem.problem)

    def close(self) -> None:
        """Drop what this replica holds in memory and close its storage client."""
        with self._lock:
            self._maps.clear()
            self._replans.clear()
        self.meta.clear()
        self.storage.close()
