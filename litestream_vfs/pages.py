"""Pages of one database state: where each lives, a shared cache, coalesced fetching.

Caching is keyed by immutable identity (replica, file, frame offset): LTX files
never change, so a cached page is never stale, whatever state asks for it.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left, bisect_right
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

from cachetools import LRUCache

from . import ltx
from .diskcache import DiskCache
from .errors import StorageError
from .storage.base import Counters, LtxObject, Storage

#: Neighbouring frames closer than this are fetched in one range.
COALESCE_GAP = 64 * 1024
#: One ranged GET never asks for more than this.
MAX_RANGE = 8 * 1024 * 1024
#: Read-ahead window: starts here on the second sequential miss in a file...
MIN_WINDOW = 64 * 1024
#: ...and doubles up to this.
MAX_WINDOW = 4 * 1024 * 1024
#: A miss served from the persistent cache brings the cached frames this far after it.
DISK_READAHEAD = 256 * 1024
#: A miss this far before a head's end, or this far after it, continues that head's stream.
SEQUENTIAL_SLACK = 8 * 1024
SEQUENTIAL_GAP = 32 * 1024


@dataclass(frozen=True)
class FileMeta:
    """What a state needs to know about one LTX file: its header and page index."""

    obj: LtxObject
    header: ltx.Header
    tail: ltx.Tail


class PageLocation(NamedTuple):
    """Where one page of a state lives: a frame of an LTX file (one per page: kept light)."""

    obj: LtxObject
    offset: int
    size: int




def merge_page_maps(metas: Sequence[FileMeta], commit: int,
                    base: Mapping[int, PageLocation] | None = None) -> dict[int, PageLocation]:
    """Newest file wins; pages beyond `commit` (the database shrank) are dropped."""
    merged: dict[int, PageLocation] = dict(base) if base else {}
    for meta in metas:
        obj = meta.obj
        merged.update((pgno, PageLocation(obj, offset, size)) for pgno, (offset, size) in meta.tail.index.items())
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


def file_key(storage: Storage, obj: LtxObject) -> str:
    """Identity of one LTX file across processes: credential-free URL + level + name."""
    return f"{storage.url}|{obj}"


def cache_key(storage: Storage, loc: PageLocation) -> tuple[str, int]:
    return (file_key(storage, loc.obj), loc.offset)


class FrameTable:
    """One file's frames in file order, to decode every frame inside a fetched range."""

    def __init__(self, meta: FileMeta) -> None:
        self.page_size = meta.header.page_size
        self.pgnos = list(meta.tail.index)
        self.offsets = [entry.offset for entry in meta.tail.index.values()]
        self.sizes = [entry.size for entry in meta.tail.index.values()]
        self.frames_end = meta.tail.index_offset - 6

    def span(self, start: int, end: int) -> range:
        """Indexes of the frames lying wholly inside [start, end)."""
        first = bisect_left(self.offsets, start)
        last = bisect_left(self.offsets, end)
        while last > first and self.offsets[last - 1] + self.sizes[last - 1] > end:
            last -= 1
        return range(first, last)

    def align(self, offset: int) -> int:
        """The start of the frame holding `offset`, so ranges split between frames, never inside one."""
        if not self.offsets or offset >= self.frames_end:
            return self.frames_end
        return self.offsets[max(bisect_right(self.offsets, offset) - 1, 0)]


@dataclass
class ReadHead:
    """One stream of reads through one file: where it ended, how far ahead it reads now."""

    end: int
    window: int = 0


class ReadAhead:
    """Per-connection sequential-read detection, like a disk's read heads.

    Each file keeps a few heads (a B-tree scan interleaves leaf runs with
    interior pages elsewhere in the file). A miss that starts where a head's
    last fetch ended continues that stream: its window doubles (64 KiB up to
    4 MiB), the current fetch is stretched to the window and the next window
    is prefetched in the background. Any other miss starts a new head and
    fetches only what was asked, so point lookups stay small.
    """

    HEADS_PER_FILE = 4

    def __init__(self) -> None:
        self._heads: dict[LtxObject, list[ReadHead]] = {}
        self._lock = threading.Lock()

    def plan(self, obj: LtxObject, start: int, end: int, frames_end: int) -> tuple[int, tuple[int, int] | None]:
        """(end of the range to fetch now, range to prefetch or None)."""
        with self._lock:
            heads = self._heads.setdefault(obj, [])
            head = next((h for h in heads
                         if h.end - SEQUENTIAL_SLACK <= start <= h.end + max(h.window, SEQUENTIAL_GAP)), None)
            if head is None:
                heads.insert(0, ReadHead(end))
                del heads[self.HEADS_PER_FILE:]
                return end, None
            heads.remove(head)
            heads.insert(0, head)
            head.window = min(max(head.window * 2, MIN_WINDOW), MAX_WINDOW)
            fetch_end = min(max(end, start + head.window), frames_end)
            ahead = (fetch_end, min(fetch_end + head.window, frames_end))
            head.end = ahead[1]
            return fetch_end, ahead if ahead[1] > ahead[0] else None


class PageFetcher:
    """Reads decoded pages for a replica through the shared cache, coalescing misses.

    Misses are grouped per file into ranges (neighbouring frames share a GET),
    stretched by the caller's `ReadAhead`, fetched in parallel; every frame in
    a fetched range is decoded and cached. Prefetches in flight are shared by
    all connections of the process.
    """

    def __init__(self, storage: Storage, cache: PageCache, pool: Executor,
                 meta_of: Mapping[LtxObject, FileMeta]) -> None:
        self.storage = storage
        self.cache = cache
        self.pool = pool
        self._meta_of = meta_of
        self._tables: dict[LtxObject, FrameTable] = {}
        self._lock = threading.Lock()
        self._inflight: dict[tuple[LtxObject, int, int], Future[None]] = {}
        self.disk: DiskCache | None = None

    def table(self, obj: LtxObject) -> FrameTable:
        with self._lock:
            table = self._tables.get(obj)
            if table is None:
                table = self._tables[obj] = FrameTable(self._meta_of[obj])
            return table

    def forget(self, objs: Iterable[LtxObject]) -> None:
        with self._lock:
            for obj in objs:
                self._tables.pop(obj, None)

    def pages(self, wanted: Mapping[int, PageLocation], charge: Sequence[Counters] = (),
              readahead: ReadAhead | None = None) -> dict[int, bytes]:
        """Decoded bytes for every wanted pgno: cached ones at once, the rest in parallel ranges."""
        out: dict[int, bytes] = {}
        missing = self._lookup(wanted, out)
        for counters in charge:
            counters.add(cache_hits=len(out), cache_misses=len(missing))
        if missing and self.disk is not None:
            missing = self._from_disk(missing, out, charge)
        if missing:
            self._wait_inflight(missing)
            still = self._lookup(missing, out)
            self._fetch(still, charge, readahead)
            left = self._lookup(still, out)
            if left:  # only a cache too small to hold one range gets here
                self._fetch(left, charge, None, into=out)
        return out

    def _lookup(self, wanted: Mapping[int, PageLocation], out: dict[int, bytes]) -> dict[int, PageLocation]:
        missing = {}
        for pgno, loc in wanted.items():
            page = self.cache.get(cache_key(self.storage, loc))
            if page is None:
                missing[pgno] = loc
            else:
                out[pgno] = page
        return missing

    def _from_disk(self, missing: dict[int, PageLocation], out: dict[int, bytes],
                   charge: Sequence[Counters]) -> dict[int, PageLocation]:
        """Serve misses from the persistent cache, with its neighbours; return what is still missing.

        Neighbouring frames come along (one query per DISK_READAHEAD bytes), so a
        warm scan costs one local query per run of pages, not one per page.
        """
        assert self.disk is not None
        by_file: dict[LtxObject, list[int]] = {}
        for loc in missing.values():
            by_file.setdefault(loc.obj, []).append(loc.offset)
        found = 0
        for obj, offsets in by_file.items():
            table, key, covered = self.table(obj), file_key(self.storage, obj), -1
            for offset in sorted(offsets):
                if offset < covered:
                    continue
                covered = offset + DISK_READAHEAD
                for frame_offset, frame in self.disk.get_frames_between(key, offset, covered):
                    i = bisect_left(table.offsets, frame_offset)
                    page = ltx.decode_page(frame, table.pgnos[i], table.page_size, str(obj))
                    self.cache.put((key, frame_offset), page)
        still = self._lookup(missing, out)
        found = len(missing) - len(still)
        for counters in charge:
            counters.add(disk_hits=found)
        return still

    def _wait_inflight(self, missing: Mapping[int, PageLocation]) -> None:
        with self._lock:
            waits = {future for (obj, start, end), future in self._inflight.items()
                     for loc in missing.values() if loc.obj == obj and start <= loc.offset < end}
        for future in waits:
            future.exception()  # a failed prefetch is retried by the normal path

    def _fetch(self, missing: Mapping[int, PageLocation], charge: Sequence[Counters],
               readahead: ReadAhead | None, into: dict[int, bytes] | None = None) -> None:
        by_file: dict[LtxObject, list[PageLocation]] = {}
        for loc in missing.values():
            by_file.setdefault(loc.obj, []).append(loc)
        jobs: list[tuple[LtxObject, int, int]] = []
        for obj, locs in by_file.items():
            table = self.table(obj)
            for start, end in _coalesce(sorted(locs, key=lambda l: l.offset)):
                if readahead is not None:
                    stretched, ahead = readahead.plan(obj, start, end, table.frames_end)
                    end = max(end, table.align(stretched))
                    if ahead is not None:
                        self._prefetch(obj, table.align(ahead[0]), table.align(ahead[1]), charge)
                jobs.append((obj, start, end))
        if len(jobs) == 1:
            self._fetch_range(*jobs[0], charge)
        else:
            for future in [self.pool.submit(self._fetch_range, *job, charge) for job in jobs]:
                future.result()
        if into is not None:
            for pgno, loc in missing.items():
                page = self.cache.get(cache_key(self.storage, loc))
                if page is None:
                    raise StorageError(f"{loc.obj}: page {pgno} could not be kept in the page cache")
                into[pgno] = page

    def _prefetch(self, obj: LtxObject, start: int, end: int, charge: Sequence[Counters]) -> None:
        if end <= start:
            return
        key = (obj, start, end)
        with self._lock:
            if key in self._inflight:
                return
            future = self.pool.submit(self._fetch_range, obj, start, end, charge)
            self._inflight[key] = future
        future.add_done_callback(lambda _f: self._done(key))

    def _done(self, key: tuple[LtxObject, int, int]) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _fetch_range(self, obj: LtxObject, start: int, end: int, charge: Sequence[Counters]) -> None:
        """One GET for [start, end) of `obj`; decode and cache every whole frame in it."""
        began = time.monotonic()
        data = self.storage.read_range(obj, start, end - start)
        waited = time.monotonic() - began
        decoded = self.keep_range(obj, start, data)
        for counters in charge:
            counters.add(gets=1, bytes_fetched=len(data), network_seconds=waited, pages_decoded=decoded)

    def keep_range(self, obj: LtxObject, start: int, data: bytes) -> int:
        """Decode and cache every whole frame of `obj` inside `data` (read at `start`); return how many."""
        table = self.table(obj)
        span = table.span(start, start + len(data))
        name = str(obj)
        prefix = file_key(self.storage, obj)
        frames = []
        for i in span:
            offset = table.offsets[i]
            frame = data[offset - start: offset - start + table.sizes[i]]
            self.cache.put((prefix, offset), ltx.decode_page(frame, table.pgnos[i], table.page_size, name))
            frames.append((offset, frame))
        if self.disk is not None:
            self.disk.put_frames(prefix, frames)
        return len(span)


def _coalesce(locs: Sequence[PageLocation]) -> list[tuple[int, int]]:
    """Group one file's frames (sorted by offset) into [start, end) ranges worth one GET each."""
    ranges: list[list[int]] = []
    for loc in locs:
        if ranges and loc.offset - ranges[-1][1] <= COALESCE_GAP and loc.offset + loc.size - ranges[-1][0] <= MAX_RANGE:
            ranges[-1][1] = max(ranges[-1][1], loc.offset + loc.size)
        else:
            ranges.append([loc.offset, loc.offset + loc.size])
    return [(a, b) for a, b in ranges]
