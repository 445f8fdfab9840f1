"""One replica as a set of restorable states: the states, their page maps, their pages.

A `Replica` is shared by every connection of a process that reads the same
URL. It composes the owners of its parts: `Lister` (the published listing),
`MetaStore` (file headers and indexes), `PageFetcher` (pages through the
caches), `ReadPath` (a state's pages, verified, re-planned around vanished
or damaged files). A `State` carries the metadata of every file in its plan, so a
reader holding a state can always address its pages; if a planned file has
vanished from the store (compaction, retention), the state is re-planned from
the current listing once, else it fails with "not a restorable state".
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Sequence, TypeVar

from cachetools import LRUCache

from . import ltx
from .damage import Damage
from .diskcache import DiskCache
from .errors import LTXError, ObjectNotFound
from .executors import Executors
from .fetcher import PageFetcher
from .filemeta import WHOLE_FILE_LIMIT, MetaStore, Reader, check_header, check_snapshot_index
from .listing import Lister, Listing, damage_note
from .pagecache import PageCache
from .pages import FileMeta, PageLocation, PageMap
from .plan import Chains
from .read_path import ReadPath
from .readahead import ReadAhead
from .states import HistoryEntry, State, StateQueries
from .storage.base import Counters, LtxObject, Storage
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
        #: Bumped when the replica was re-created at its URL: states of an older epoch are gone.
        self.epoch = 0
        self._maps: LRUCache[tuple[LtxObject, ...], PageMap] = LRUCache(PAGE_MAPS_KEPT)
        self.read_path = ReadPath(self)
        #: The URL this replica was opened with, credentials included: for reopening it
        #: (e.g. a second connection at another state); never printed (`storage.url` is).
        self.source_url = storage.url

    # -- listing ---------------------------------------------------------
    def _published(self, previous: Listing | None, listing: Listing) -> None:
        """A new listing: forget files that left it; a replica whose history went backwards was
        re-created at the same URL, so nothing known about the old one may be used again."""
        if previous is not None and listing.recreated_since(previous):
            with self._lock:
                self.epoch += 1
                self._maps.clear()
            self.read_path.forget_replans()
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
            if state.epoch == self.epoch:
                self._maps[state.plan] = built
        return built

    def read_pages(self, state: State, pgnos: Iterable[int], charge: Charge = (),
                   readahead: ReadAhead | None = None, verify: str | None = None) -> dict[int, bytes]:
        """Decoded pages of `state`, re-planned if a file vanished or is damaged (read_path.py)."""
        return self.read_path.read_pages(state, pgnos, charge, readahead, verify)

    def serve(self, wanted: dict[int, PageLocation], charge: Charge = (), readahead: ReadAhead | None = None,
              verify: str | None = None) -> dict[int, bytes]:
        """The pages at these locations, once their files passed what `verify` asks."""
        return self.read_path.serve(wanted, charge, readahead, verify)

    def close(self) -> None:
        """Drop what this replica holds in memory and close its storage client."""
        with self._lock:
            self._maps.clear()
        self.read_path.forget_replans()
        self.meta.clear()
        self.storage.close()
