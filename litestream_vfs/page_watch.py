"""The next state whose changes may have written one of a set of pages, read from file indexes.

Every LTX file's index names the pages it wrote; a compacted file's names
every page any of its transactions wrote. So a stretch of history is first
covered with the coarsest files that tile it (their indexes fetched in one
concurrent round), and only a tile that wrote a watched page is looked at
again through finer files, down to the single transaction where that exists.
Where no finer file remains, the change is placed at the compacted file's
end state and said to cover its range.

Page 1 is written by most transactions that grow or shrink the database (its
header holds the size and the freelist), so a write to it counts only when
the bytes a reader depends on (the rest of the header, the schema b-tree
on it) differ from the watched state's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .pages import FileMeta, PageLocation
from .replica import Replica, State
from .storage.base import LtxObject

def page1_meaning(page: bytes) -> bytes:
    """Page 1 without the header fields that change without changing what a reader sees:
    change counter, database size, freelist head and count (24-40), version-valid-for
    and the SQLite version number (92-100)."""
    return page[:24] + page[40:92] + page[100:]


@dataclass(frozen=True)
class Touch:
    """The index of the state where a watched page may have changed; `since`: first TXID it may
    lie in when the only file covering that step compacts several transactions."""

    index: int
    since: int | None


class PageWatch:
    """Steps through `states` (restorable TXIDs, oldest first) by the pages their files wrote."""

    def __init__(self, replica: Replica, states: Sequence[int]) -> None:
        self.replica = replica
        self.states = list(states)
        self._index = {t: i for i, t in enumerate(self.states)}
        self._files = [o for o in replica.files if o.max_txid in self._index and o.min_txid > 1]
        self._starting: dict[int, list[LtxObject]] = {}  # min_txid -> files, for a quick tiling
        for obj in self._files:
            self._starting.setdefault(obj.min_txid, []).append(obj)
        #: Indexes fetched to answer so far (coarse and fine).
        self.files_read: set[LtxObject] = set()

    def next_touch(self, index: int, state: State, pages: set[int]) -> Touch | None:
        """The first state after `states[index]` whose files may have written one of `pages`
        (read at `state`, which is `states[index]`), or None if none did."""
        page1 = page1_meaning(self.replica.read_pages(state, [1]).get(1, b"")) if 1 in pages else b""
        return self._search(self.states[index], self.states[-1], pages, page1, None)

    def _search(self, start: int, end: int, pages: set[int], page1: bytes, below: int | None) -> Touch | None:
        tiles = self.cover(start, end, below)
        if tiles is None:  # no files tile this stretch: the next state is looked at itself
            return self._step(start) if start < end else None
        metas = self.replica.metas(tiles)  # one concurrent round
        self.files_read.update(tiles)
        cursor = start
        for tile, meta in zip(tiles, metas):
            if self._wrote(meta, pages, page1):
                if tile.level == 0:
                    return Touch(self._index[tile.max_txid], None)
                finer = self._search(cursor, tile.max_txid, pages, page1, tile.level)
                if finer is not None:
                    return finer  # else the write was before `cursor` (a tile starting earlier)
            cursor = tile.max_txid
        return None

    def _step(self, start: int) -> Touch:
        """The state right after `start`, covering every TXID in between."""
        after = self._index[start] + 1
        return Touch(after, start + 1 if self.states[after] - start > 1 else None)

    def cover(self, start: int, end: int, below: int | None) -> list[LtxObject] | None:
        """Files tiling the states after `start` up to `end`, coarsest first (levels under `below`).

        A file starting right after the cursor is preferred; otherwise one that
        starts earlier and ends later (its index is a superset of what changed).
        """
        def usable(obj: LtxObject) -> bool:
            return obj.max_txid <= end and (below is None or obj.level < below)

        tiles: list[LtxObject] = []
        cursor = start
        while cursor < end:
            starting = [o for o in self._starting.get(cursor + 1, ()) if usable(o)]
            if starting:
                best = max(starting, key=lambda o: (o.max_txid, -o.level))
            else:
                spanning = [o for o in self._files if usable(o) and o.min_txid <= cursor < o.max_txid]
                if not spanning:
                    return None
                best = min(spanning, key=lambda o: (o.max_txid - o.min_txid, o.max_txid))
            tiles.append(best)
            cursor = best.max_txid
        return tiles

    def _wrote(self, meta: FileMeta, pages: set[int], page1: bytes) -> bool:
        index = meta.tail.index
        if any(p != 1 and (p in index or p > meta.header.commit) for p in pages):
            return True
        if 1 not in pages or 1 not in index:
            return False
        entry = index[1]
        found = self.replica.fetcher.pages({1: PageLocation(meta, entry.offset, entry.size)},
                                           (self.replica.counters,))
        return page1_meaning(found[1]) != page1
