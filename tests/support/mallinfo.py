"""glibc's `mallinfo2()`: what malloc holds over all arenas, for tests and the soak's reader."""

from __future__ import annotations

import ctypes


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def mallinfo() -> MallInfo2 | None:
    """malloc's figures now; None where the C library has no `mallinfo2` (not glibc ≥ 2.33)."""
    call = getattr(ctypes.CDLL(None), "mallinfo2", None)
    if call is None:
        return None
    call.restype = MallInfo2
    return call()
