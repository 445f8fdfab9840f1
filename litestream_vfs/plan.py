"""Which LTX files rebuild which database state: pure logic, no I/O.

Every file spans TXIDs [min, max] and turns state `min - 1` into state `max`;
a file with min_txid 1 is a full snapshot (it starts from the empty state 0).
A state T is restorable when a contiguous chain of files leads from 0 to T.
Among all chains we pick the one with the fewest files (then the fewest
bytes, then the highest levels): fewer page indexes to fetch, fewer places to
look a page up, and files that outlive level 0's short retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .storage.base import LtxObject


@dataclass(frozen=True)
class Chains:
    """Every restorable state of one listing and the cheapest chain to each."""

    #: txid -> (file ending the chain, previous state's txid); 0 is the empty state.
    _links: dict[int, tuple[LtxObject, int]]
    #: txid -> the finest-level file ending exactly there (its header dates the state).
    _finest: dict[int, LtxObject]
    states: tuple[int, ...]

    def plan(self, txid: int) -> tuple[LtxObject, ...]:
        """Files to apply, oldest first, to rebuild state `txid` exactly."""
        files: list[LtxObject] = []
        while txid:
            obj, txid = self._links[txid]
            files.append(obj)
        files.reverse()
        return tuple(files)

    def finest(self, txid: int) -> LtxObject:
        """The lowest-level file that ends at `txid`: its header time is the state's time."""
        return self._finest[txid]

    def __contains__(self, txid: object) -> bool:
        return txid in self._links

    @property
    def latest(self) -> int | None:
        return self.states[-1] if self.states else None

    @property
    def earliest(self) -> int | None:
        return self.states[0] if self.states else None


def build_chains(files: Iterable[LtxObject]) -> Chains:
    """Dynamic programming over files sorted by max_txid (a chain only grows forward)."""
    # txid -> (file count, bytes, -levels): fewest files, then fewest bytes, then the
    # most compacted files (level-0 files are deleted soonest after compaction).
    best: dict[int, tuple[int, int, int]] = {0: (0, 0, 0)}
    links: dict[int, tuple[LtxObject, int]] = {}
    finest: dict[int, LtxObject] = {}
    for obj in sorted(files, key=lambda o: (o.max_txid, o.level, o.min_txid)):
        if obj.max_txid not in finest or obj.level < finest[obj.max_txid].level:
            finest[obj.max_txid] = obj
        start = best.get(obj.min_txid - 1)
        if start is None:
            continue  # a gap before this file: nothing restorable leads into it
        cost = (start[0] + 1, start[1] + obj.size, start[2] - obj.level)
        current = best.get(obj.max_txid)
        if current is None or cost < current:
            best[obj.max_txid] = cost
            links[obj.max_txid] = (obj, obj.min_txid - 1)
    states = tuple(sorted(links))
    return Chains(links, {t: finest[t] for t in states}, states)
