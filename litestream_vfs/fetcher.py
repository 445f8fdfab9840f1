"""Decoded pages through the caches: memory, then disk, then coalesced ranged GETs.

Misses are grouped per file into ranges (neighbouring frames share a GET),
stretched by the caller's `ReadAhead`, fetched in parallel on the `io` pool;
every frame in a fetched range is decoded and cached. Read-ahead goes to the
`prefetch` pool; a foreground read never waits behind a prefetch that has not
started (it cancels it and fetches the range itself).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Mapping, Sequence

from . import ltx
from .diskcache import DiskCache
from .errors import StorageError
from .executors import Executors
from .pagecache import PageCache
from .pages import FileMeta, PageLocation
from .readahead import ReadAhead
from .storage.base import Counters, Storage

#: Neighbouring frames closer than this are fetched in one range.
COALESCE_GAP = 64 * 1024
#: One ranged GET never asks for more than this.
MAX_RANGE = 8 * 1024 * 1024
#: A miss served from the persistent cache brings the cached frames this far after it.
DISK_READAHEAD = 256 * 1024
#: Read-ahead windows use at most this share of the page cache, so what is read ahead
#: is still cached when the scan reaches it.
READAHEAD_SHARE = 8

Charge = Sequence[Counters]
_Range = tuple[FileMeta, int, int]


class PageFetcher:
    """Reads decoded pages of one replica's files; prefetches in flight are shared by connections."""

    def __init__(self, storage: Storage, cache: PageCache, executors: Executors) -> None:
        self.storage = storage
        self.cache = cache
        self.executors = executors
        self.disk: DiskCache | None = None
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, int, int], Future[None]] = {}

    def pages(self, wanted: Mapping[int, PageLocation], charge: Charge = (),
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
            page = self.cache.get(loc.key)
            if page is None:
                missing[pgno] = loc
            else:
                out[pgno] = page
        return missing

    def _from_disk(self, missing: dict[int, PageLocation], out: dict[int, bytes],
                   charge: Charge) -> dict[int, PageLocation]:
        """Serve misses from the persistent cache, with its neighbours; return what is still missing.

        Neighbouring frames come along (one query per DISK_READAHEAD bytes), so a
        warm scan costs one local query per run of pages, not one per page.
        """
        assert self.disk is not None
        for meta, offsets in _by_file(missing).items():
            table, covered = meta.table, -1
            for offset in sorted(loc.offset for loc in offsets):
                if offset < covered:
                    continue
                covered = offset + DISK_READAHEAD
                for frame_offset, frame in self.disk.get_frames_between(meta.key, offset, covered):
                    page = ltx.decode_page(frame, table.pgno_at(frame_offset), table.page_size, str(meta.obj))
                    self.cache.put((meta.key, frame_offset), page)
        still = self._lookup(missing, out)
        for counters in charge:
            counters.add(disk_hits=len(missing) - len(still))
        return still

    def _wait_inflight(self, missing: Mapping[int, PageLocation]) -> None:
        """Wait for prefetches that hold wanted pages; one queued behind busy prefetch threads is
        cancelled instead (we fetch it ourselves), so a foreground read never waits in that queue."""
        with self._lock:
            waits = {future for (key, start, end), future in self._inflight.items()
                     for loc in missing.values() if loc.meta.key == key and start <= loc.offset < end}
        for future in waits:
            if future.running() or not self.executors.prefetch_saturated or not future.cancel():
                future.exception()  # a failed prefetch is retried by the normal path

    def _fetch(self, missing: Mapping[int, PageLocation], charge: Charge,
               readahead: ReadAhead | None, into: dict[int, bytes] | None = None) -> None:
        jobs: list[_Range] = []
        max_window = max(self.cache.max_bytes // READAHEAD_SHARE, 1)
        for meta, locs in _by_file(missing).items():
            table = meta.table
            for start, end in _coalesce(sorted(locs, key=lambda loc: loc.offset)):
                if readahead is not None:
                    stretched, ahead = readahead.plan(meta.key, start, end, table.frames_end, max_window)
                    end = max(end, table.align(stretched))
                    if ahead is not None:
                        self._prefetch(meta, table.align(ahead[0]), table.align(ahead[1]), charge)
                jobs.append((meta, start, end))
        self.executors.fetch_all([lambda job=job: self._fetch_range(*job, charge) for job in jobs])
        if into is not None:
            for pgno, loc in missing.items():
                page = self.cache.get(loc.key)
                if page is None:
                    raise StorageError(f"{loc.obj}: page {pgno} could not be kept in the page cache")
                into[pgno] = page

    def _prefetch(self, meta: FileMeta, start: int, end: int, charge: Charge) -> None:
        if end <= start:
            return
        key = (meta.key, start, end)
        with self._lock:
            if key in self._inflight:
                return
            future = self.executors.try_prefetch(lambda: self._fetch_range(meta, start, end, charge))
            if future is None:
                return
            self._inflight[key] = future
        future.add_done_callback(lambda _f: self._done(key))

    def _done(self, key: tuple[str, int, int]) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _fetch_range(self, meta: FileMeta, start: int, end: int, charge: Charge) -> None:
        """One GET for [start, end) of a file; decode and cache every whole frame in it."""
        began = time.monotonic()
        data = self.storage.read_range(meta.obj, start, end - start)
        waited = time.monotonic() - began
        decoded = self.keep_range(meta, start, data)
        for counters in charge:
            counters.add(gets=1, bytes_fetched=len(data), network_seconds=waited, pages_decoded=decoded)

    def keep_range(self, meta: FileMeta, start: int, data: bytes) -> int:
        """Decode and cache every whole frame of the file inside `data` (read at `start`); return how many."""
        table = meta.table
        span = table.span(start, start + len(data))
        name = str(meta.obj)
        frames = []
        for i in span:
            offset = table.offsets[i]
            frame = data[offset - start: offset - start + table.sizes[i]]
            self.cache.put((meta.key, offset), ltx.decode_page(frame, table.pgnos[i], table.page_size, name))
            frames.append((offset, frame))
        if self.disk is not None:
            self.disk.put_frames(meta.key, frames)
        return len(span)

    @property
    def prefetches_in_flight(self) -> int:
        with self._lock:
            return len(self._inflight)


def _by_file(locs: Mapping[int, PageLocation]) -> dict[FileMeta, list[PageLocation]]:
    grouped: dict[FileMeta, list[PageLocation]] = {}
    for loc in locs.values():
        grouped.setdefault(loc.meta, []).append(loc)
    return grouped


def _coalesce(locs: Sequence[PageLocation]) -> list[tuple[int, int]]:
    """Group one file's frames (sorted by offset) into [start, end) ranges worth one GET each."""
    ranges: list[list[int]] = []
    for loc in locs:
        if ranges and loc.offset - ranges[-1][1] <= COALESCE_GAP and loc.offset + loc.size - ranges[-1][0] <= MAX_RANGE:
            ranges[-1][1] = max(ranges[-1][1], loc.offset + loc.size)
        else:
            ranges.append([loc.offset, loc.offset + loc.size])
    return [(a, b) for a, b in ranges]
