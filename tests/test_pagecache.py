"""The shared page cache: bounded in bytes, newest entries kept on resize, the heap trimmed as pages churn."""

from __future__ import annotations

import platform

from litestream_vfs.heap import TRIM_EVERY
from litestream_vfs.pagecache import PageCache


def test_the_cache_holds_at_most_its_size_and_keeps_the_newest_on_resize():
    cache = PageCache(10 * 4096)
    for n in range(20):
        cache.put(("file", n), bytes(4096))
    assert cache.current_bytes == 10 * 4096 and cache.max_bytes == 10 * 4096
    assert cache.get(("file", 0)) is None and cache.get(("file", 19)) is not None
    cache.resize(3 * 4096)
    assert cache.current_bytes == 3 * 4096
    assert [n for n in range(20) if cache.get(("file", n)) is not None] == [17, 18, 19]
    cache.put(("file", 99), bytes(4 * 4096))  # larger than the whole cache: not kept
    assert cache.get(("file", 99)) is None
    cache.clear()
    assert cache.current_bytes == 0


def test_the_heap_is_trimmed_once_per_trim_every_bytes_put():
    cache = PageCache(4096 * 8)
    page = bytes(4096)
    for n in range(TRIM_EVERY // 4096 - 1):
        cache.put(("file", n), page)
    assert cache.heap_trims == 0
    cache.put(("file", -1), page)
    assert cache.heap_trims == (1 if platform.libc_ver()[0] == "glibc" else 0)
    assert cache.current_bytes == 8 * 4096  # trimming never touches what the cache holds
