"""Pages of one database state: where each lives, a shared cache, coalesced fetching.

Caching is keyed by immutable identity (replica, file, frame offset): LTX files
never change, so a cached page is never stale, whatever state asks for it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from cachetools import LRUCache

from . import ltx
from .storage.base import Counters, LtxObject, Storage

#: Neighbouring frames closer than this are fetched in one range.
COALESCE_GAP = 64 * 1024
#: One ranged GET never asks for more than this.
MAX_RANGE = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileMeta:
    """What a state needs to know about one LTX file: its header and page index."""

    obj: LtxObject
    header: ltx.Header
    tail: ltx.Tail


@dataclass(frozen=True)
class PageLocation:
    obj: LtxObject
    offset: int
    size: int


PageMap = Mapping[int, PageLocation]


def merge_page_maps(metas: Sequence[FileMeta], commit: int,
                    base: Mapping[int, PageLocation] | None = None) -> dict[int, PageLocation]:
    """Newest file wins; pages beyond `commit` (the database shrank) are dropped."""
    merged: dict[int, PageLocation] = dict(base) if base else {}
    for meta in metas:
        obj = meta.obj
        for pgno, entry in meta.tail.index.items():
            merged[pgno] = PageLocation(obj, entry.offset, entry.size)
    if merged and max(merged) > commit:
        merged = {p: loc for p, loc in merged.items() if p <= commit}
    return merged


class PageCache:
    """A process-wide LRU of decoded pages bounded in bytes, safe across threads."""

    def __init__(self, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._cache: LRUCache[tuple[str, int], bytes] = LRUCache(maxsize=max(max_bytes, 1), getsizeof=len)

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: tuple[str, int], page: bytes) -> None:
        with self._lock:
            if len(page) <= self._cache.maxsize:
                self._cache[key] = page

    def resize(self, max_bytes: int) -> None:
        with self._lock:
            old = self._cache
            self._cache = LRUCache(maxsize=max(max_bytes, 1), getsizeof=len)
            for key in list(old.keys())[-len(old):]:
                if self._cache.currsize + len(old[key]) <= self._cache.maxsize:
                    self._cache[key] = old[key]

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    @property
    def current_bytes(self) -> int:
        with self._lock:
            return int(self._cache.currsize)


def cache_key(storage: Storage, loc: PageLocation) -> tuple[str, int]:
    return (f"{storage.url}|{loc.obj}", loc.offset)


def _ranges(locs: Sequence[PageLocation]) -> list[list[PageLocation]]:
    """Group one file's frames (sorted by offset) into runs worth one GET each."""
    groups: list[list[PageLocation]] = []
    for loc in locs:
        if groups:
            run = groups[-1]
            start, end = run[0].offset, run[-1].offset + run[-1].size
            if loc.offset - end <= COALESCE_GAP and loc.offset + loc.size - start <= MAX_RANGE:
                run.append(loc)
                continue
        groups.append([loc])
    return groups


class PageFetcher:
    """Reads decoded pages for a replica through the shared cache, coalescing misses."""

    def __init__(self, storage: Storage, cache: PageCache, pool: Executor, page_size_of: Mapping[LtxObject, int]) -> None:
        self.storage = storage
        self.cache = cache
        self.pool = pool
        self._page_size_of = page_size_of

    def pages(self, wanted: Mapping[int, PageLocation], counters: Iterable[Counters] = ()) -> dict[int, bytes]:
        """Decoded bytes for every wanted pgno: cached ones at once, the rest in parallel ranges."""
        out: dict[int, bytes] = {}
        missing: dict[LtxObject, list[tuple[int, PageLocation]]] = {}
        for pgno, loc in wanted.items():
            page = self.cache.get(cache_key(self.storage, loc))
            if page is None:
                missing.setdefault(loc.obj, []).append((pgno, loc))
            else:
                out[pgno] = page
        hits, misses = len(out), len(wanted) - len(out)
        for c in counters:
            c.add(cache_hits=hits, cache_misses=misses)
        jobs = []
        for obj, items in missing.items():
            by_loc = {loc: pgno for pgno, loc in items}
            for run in _ranges(sorted(by_loc, key=lambda l: l.offset)):
                jobs.append((run, {loc: by_loc[loc] for loc in run}))
        if len(jobs) == 1:
            out.update(self._fetch_run(*jobs[0], counters=tuple(counters)))
        elif jobs:
            futures = [self.pool.submit(self._fetch_run, run, names, tuple(counters)) for run, names in jobs]
            for future in futures:
                out.update(future.result())
        return out

    def _fetch_run(self, run: list[PageLocation], pgnos: Mapping[PageLocation, int],
                   counters: tuple[Counters, ...]) -> dict[int, bytes]:
        obj = run[0].obj
        start = run[0].offset
        began = time.monotonic()
        data = self.storage.read_range(obj, start, run[-1].offset + run[-1].size - start)
        waited = time.monotonic() - began
        page_size = self._page_size_of[obj]
        out: dict[int, bytes] = {}
        for loc in run:
            frame = data[loc.offset - start: loc.offset - start + loc.size]
            page = ltx.decode_page(frame, pgnos[loc], page_size, str(obj))
            self.cache.put(cache_key(self.storage, loc), page)
            out[pgnos[loc]] = page
        for c in counters:
            c.add(gets=1, bytes_fetched=len(data), network_seconds=waited, pages_decoded=len(run))
        return out
