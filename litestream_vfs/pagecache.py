"""The process-wide cache of decoded pages, bounded in bytes.

Keys are (file identity, frame offset): LTX files never change, and a file's
identity includes its size and trailer checksum, so a cached page is never
stale and never another replica's, whatever state asks for it. Every
`heap.TRIM_EVERY` bytes put, the heap is trimmed: the pages the cache drops
would otherwise stay in malloc's arenas as free but held memory.
"""

from __future__ import annotations

import threading

from cachetools import LRUCache

from .heap import TRIM_EVERY, trim_heap


class PageCache:
    """An LRU of decoded pages bounded in bytes, safe across threads."""

    def __init__(self, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._cache: LRUCache[tuple[str, int], bytes] = LRUCache(maxsize=max(max_bytes, 1), getsizeof=len)
        self._put_since_trim = 0
        #: How often the heap was trimmed (see heap.py).
        self.heap_trims = 0

    @property
    def max_bytes(self) -> int:
        return int(self._cache.maxsize)

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: tuple[str, int], page: bytes) -> None:
        with self._lock:
            if len(page) <= self._cache.maxsize:
                self._cache[key] = page
            self._put_since_trim += len(page)
            due = self._put_since_trim >= TRIM_EVERY
            if due:
                self._put_since_trim = 0
        if due and trim_heap():  # outside the lock: other threads keep using the cache
            with self._lock:
                self.heap_trims += 1

    def resize(self, max_bytes: int) -> None:
        with self._lock:
            old = self._cache
            self._cache = LRUCache(maxsize=max(max_bytes, 1), getsizeof=len)
            kept, room = [], self._cache.maxsize
            for key in reversed(list(old.keys())):  # the newest that fit
                size = len(old[key])
                if size <= room:
                    kept.append(key)
                    room -= size
            for key in reversed(kept):
                self._cache[key] = old[key]

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    @property
    def current_bytes(self) -> int:
        with self._lock:
            return int(self._cache.currsize)
