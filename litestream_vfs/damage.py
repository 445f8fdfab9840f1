"""Files of a replica found damaged (cut short, corrupt, not LTX), remembered by identity.

A file is damaged when what was read from it fails a structural or checksum
check. The planner leaves damaged files out, so every state another chain of
intact files reaches stays readable. The verdict belongs to one identity of
the file (its name and listed size): when a listing shows the file with
another size (an upload that completed later), it is a new identity and is
checked again.
"""

from __future__ import annotations

import threading
from typing import Iterable

from .errors import LTXError
from .storage.base import LtxObject

Identity = tuple[int, int, int, int]


def identity(obj: LtxObject) -> Identity:
    """What tells two listings of a file apart: level, TXID span and size."""
    return (obj.level, obj.min_txid, obj.max_txid, obj.size)


class Damage:
    """identity -> the error that showed the file damaged; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[Identity, tuple[LtxObject, LTXError]] = {}

    def mark(self, obj: LtxObject, error: LTXError) -> bool:
        """Remember `obj` as damaged; True if this is news."""
        with self._lock:
            if identity(obj) in self._found:
                return False
            self._found[identity(obj)] = (obj, error)
            return True

    def problem(self, obj: LtxObject) -> LTXError | None:
        with self._lock:
            found = self._found.get(identity(obj))
        return found[1] if found else None

    def intact(self, files: Iterable[LtxObject]) -> list[LtxObject]:
        with self._lock:
            return [o for o in files if identity(o) not in self._found]

    def found(self) -> list[tuple[LtxObject, LTXError]]:
        """Every damaged file still listed, in level and TXID order."""
        with self._lock:
            return sorted(self._found.values(), key=lambda item: item[0])

    def retain(self, files: Iterable[LtxObject]) -> None:
        """Forget files no longer listed with the same identity (removed, or re-uploaded)."""
        keep = {identity(o) for o in files}
        with self._lock:
            for key in [k for k in self._found if k not in keep]:
                del self._found[key]
