"""Keeping a long-lived reader's heap from creeping up (glibc; elsewhere nothing to do).

Fetch threads decode pages and the page cache drops them again, all day. Under glibc's
defaults that churn fragments malloc's arenas: the 30-minute soak's RSS grew 13-16 %
while the bytes in use stayed flat, all of it free-but-held memory (15 -> 21 MB), and a
soak with `MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072` stayed flat (+2.5 %).
So at the first open the machinery sets those two (unless the environment sets any
`MALLOC_*` itself): large buffers are mapped and unmapped whole instead of raising the
threshold and landing in the heap, and two arenas serve every thread. And every
`TRIM_EVERY` bytes of decoded pages, `malloc_trim(0)` returns whole free pages.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

#: Trim after this many bytes of decoded pages went through the page cache.
TRIM_EVERY = 64 * 1024 * 1024
#: glibc's mallopt parameters (malloc.h) and the values set.
M_MMAP_THRESHOLD, MMAP_THRESHOLD = -3, 128 * 1024
M_ARENA_MAX, ARENA_MAX = -8, 2


def _libc() -> Any | None:
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:  # no C library to load symbols from
        return None


_LIBC = _libc()


def tune_heap() -> bool:
    """Fix the mmap threshold and the number of arenas; False where not glibc or where the
    environment already tunes malloc (then the user's settings stand)."""
    if _LIBC is None or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    _LIBC.mallopt(M_ARENA_MAX, ARENA_MAX)
    return True


def trim_heap() -> bool:
    """Return the heap's free pages to the OS; False where the C library cannot."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True
