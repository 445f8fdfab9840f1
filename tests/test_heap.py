"""heap.trim_heap: memory freed inside malloc's arenas goes back to the operating system."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

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


MAPPED_AFTER_REUSE = """
import sys
from litestream_vfs.heap import tune_heap
from support.mallinfo import mallinfo
if sys.argv[1] == "tuned":
    assert tune_heap()
before = mallinfo().hblks
buffer = bytearray(1 << 20)  # mapped; freeing it raises glibc's dynamic threshold past 1 MiB
del buffer
buffer = bytearray(1 << 20)
print(mallinfo().hblks - before)
"""


def mapped_blocks(mode: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", MAPPED_AFTER_REUSE, mode], capture_output=True, text=True,
                          env={**clean, **env}, check=True, cwd=Path(__file__).parent)  # finds support/
    return int(done.stdout)


def test_tuned_the_second_large_buffer_is_mapped_too_so_freeing_it_returns_it():
    """Under glibc's defaults a freed 1 MiB buffer raises the mmap threshold and the next one
    lands in the heap (where freeing leaves a hole); tuned, every large buffer is mapped."""
    assert (mapped_blocks("default"), mapped_blocks("tuned")) == (0, 1)


def test_a_malloc_setting_in_the_environment_is_left_to_stand():
    with pytest.raises(subprocess.CalledProcessError) as failed:  # tune_heap() declines: the assert fails
        mapped_blocks("tuned", MALLOC_ARENA_MAX="4")
    assert failed.value.stderr.rstrip().endswith("AssertionError")  # not an import or other failure
