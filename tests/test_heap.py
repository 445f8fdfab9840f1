"""heap.trim_heap: memory freed inside malloc's arenas goes back to the operating system."""

from __future__ import annotations

import platform

import pytest

from litestream_vfs.heap import trim_heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def test_trimming_returns_free_pages_held_between_live_blocks():
    """40 MB of 8 KiB pages, of which every 64th stays alive: free() cannot shrink the
    heap past the live ones, so the freed 39 MB stay in RSS until the heap is trimmed."""
    blocks = [bytes(8192) for _ in range(40 * 128)]
    kept = blocks[::64]
    del blocks
    before = rss_mb()
    assert trim_heap()
    after = rss_mb()
    assert after < before - 20, f"RSS {before:.1f} -> {after:.1f} MB"
    assert len(kept) == 80
