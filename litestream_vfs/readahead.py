"""Per-connection sequential-read detection, like a disk's read heads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

#: Read-ahead window: starts here on the second sequential miss in a file...
MIN_WINDOW = 64 * 1024
#: ...and doubles up to this (or less: see `ReadAhead.plan`'s `max_window`).
MAX_WINDOW = 4 * 1024 * 1024
#: A miss this far before a head's end, or this far after it, continues that head's stream.
SEQUENTIAL_SLACK = 8 * 1024
SEQUENTIAL_GAP = 32 * 1024


@dataclass
class ReadHead:
    """One stream of reads through one file: where it ended, how far ahead it reads now."""

    end: int
    window: int = 0


class ReadAhead:
    """Read heads of one connection: a few per file, for the files it read last.

    Each file keeps a few heads (a B-tree scan interleaves leaf runs with
    interior pages elsewhere in the file). A miss that starts where a head's
    last fetch ended continues that stream: its window doubles (64 KiB up to
    `max_window`), the current fetch is stretched to the window and the next
    window is prefetched in the background. Any other miss starts a new head
    and fetches only what was asked, so point lookups stay small. Only the
    `FILES_KEPT` most recently read files keep heads: memory stays bounded
    however long the connection follows the replica.
    """

    HEADS_PER_FILE = 4
    FILES_KEPT = 32

    def __init__(self) -> None:
        self._heads: OrderedDict[str, list[ReadHead]] = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, file: str, start: int, end: int, frames_end: int,
             max_window: int = MAX_WINDOW) -> tuple[int, tuple[int, int] | None]:
        """(end of the range to fetch now, range to prefetch or None) for a miss of [start, end)."""
        with self._lock:
            heads = self._heads.pop(file, [])
            self._heads[file] = heads
            while len(self._heads) > self.FILES_KEPT:
                self._heads.popitem(last=False)
            head = next((h for h in heads
                         if h.end - SEQUENTIAL_SLACK <= start <= h.end + max(h.window, SEQUENTIAL_GAP)), None)
            if head is None:
                heads.insert(0, ReadHead(end))
                del heads[self.HEADS_PER_FILE:]
                return end, None
            heads.remove(head)
            heads.insert(0, head)
            head.window = min(max(head.window * 2, MIN_WINDOW), max(MIN_WINDOW, max_window))
            fetch_end = min(max(end, start + head.window), frames_end)
            ahead = (fetch_end, min(fetch_end + head.window, frames_end))
            head.end = ahead[1]
            return fetch_end, ahead if ahead[1] > ahead[0] else None

    @property
    def files(self) -> int:
        with self._lock:
            return len(self._heads)
