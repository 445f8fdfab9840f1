"""Giving freed heap memory back to the operating system now and then.

glibc's malloc keeps what a program frees inside its per-thread arenas. Pages that
fetch threads decode and the page cache later drops leave free holes there, so a
long-lived reader's RSS creeps up although the bytes in use stay flat (the 30-minute
soak: malloc's free-but-held bytes grew from 15 to 21 MB while bytes in use did not
move). `malloc_trim(0)` hands every whole free page of every arena back (well under
a millisecond); where there is no glibc there is nothing to do.
"""

from __future__ import annotations

import ctypes
from typing import Callable

#: Trim after this many bytes of decoded pages went through the page cache.
TRIM_EVERY = 64 * 1024 * 1024


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (macOS, musl, Windows)
        return None


_TRIM = _malloc_trim()


def trim_heap() -> bool:
    """Return the heap's free pages to the OS; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
