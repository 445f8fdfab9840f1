"""The change log: per restorable state, the b-trees whose pages its changes touched.

The log needs no page contents for most states: the pages a state changed are
the page numbers in the index of the finest LTX file ending there. Naming them
needs a page -> b-tree map of the state, which SQLite's `dbstat` builds by
walking every b-tree; that map is reused for the next state whenever the
pages it changed are provably only b-tree leaves that stayed leaves (see
`OwnerMaps.unchanged_structure`), so `dbstat` runs only after structural changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Mapping

from . import btree
from .connect import connect, open_replica
from .pages import FileMeta, locations
from .replica import Replica, State
from .state_range import bound
from .timeparse import format_txid

#: The name given to pages that no b-tree owns (free pages, pointer maps, the lock page).
FREE = "(freelist)"
_LEAF_TYPES = (btree.INDEX_LEAF, btree.TABLE_LEAF)


# -- the log ------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One restorable state and the b-trees its changes touched (name -> pages changed).

    `min_txid..txid` is the span of the finest file ending at this state: for a
    level-0 file one transaction, for a compacted file several (`coarse`).
    """

    txid: int
    time: datetime
    level: int
    min_txid: int
    tables: Mapping[str, int]

    @property
    def coarse(self) -> bool:
        return self.min_txid < self.txid


@dataclass(frozen=True)
class _Owner:
    name: str
    leaf: bool


class OwnerMaps:
    """pgno -> owning b-tree per state, through `dbstat` on one connection moved in time."""

    def __init__(self, url: str, replica: Replica) -> None:
        self.replica = replica
        self.connection = connect(url)
        self._maps: dict[int, dict[int, _Owner]] = {}
        #: How many states needed a full `dbstat` walk (the rest reused a neighbour's map).
        self.dbstat_runs = 0

    def owners(self, state: State, previous: State | None = None,
               change: FileMeta | None = None) -> dict[int, _Owner]:
        """The map at `state`; `previous`'s map when `change` (the file from it) left the structure alone."""
        if state.txid in self._maps:
            return self._maps[state.txid]
        before = self._maps.get(previous.txid) if previous is not None else None
        if before is not None and change is not None and self.unchanged_structure(previous, state, before, change):
            found = before
        else:
            found = self._dbstat(state)
        self._maps = {state.txid: found, **({previous.txid: before} if before is not None else {})}
        return found

    def unchanged_structure(self, previous: State, state: State, before: Mapping[int, _Owner],
                            change: FileMeta) -> bool:
        """True when no page that `change` wrote can move a page to another owner.

        A page changes owner only if some page pointing to it changes: an interior
        page, an overflow pointer, a freelist trunk, or the schema (root pages).
        If every written page was a leaf and still is one, the schema cookie is
        the same and the database kept its size, none of those changed. The
        written pages come from the (small, usually cached) file itself.
        """
        changed = sorted(change.tail.index)
        if previous.commit != state.commit or any(not before.get(p, _Owner(FREE, False)).leaf for p in changed):
            return False
        pages = self.replica.serve(dict(locations(change)))
        if 1 in pages:
            cookie = slice(btree.SCHEMA_COOKIE, btree.SCHEMA_COOKIE + 4)
            if pages[1][cookie] != self.replica.read_pages(previous, [1]).get(1, b"")[cookie]:
                return False
        return all(pages.get(p, b"\0" * 101)[100 if p == 1 else 0] in _LEAF_TYPES for p in changed)

    def _dbstat(self, state: State) -> dict[int, _Owner]:
        self.dbstat_runs += 1
        self.connection.pragma("litestream_txid", format_txid(state.txid))
        return {pgno: _Owner(name, kind == "leaf") for pgno, name, kind
                in self.connection.execute("SELECT pageno, name, pagetype FROM dbstat")}

    def close(self) -> None:
        self.connection.close()


def change_log(url: str, *, table: str | None = None, since: str | int | None = None,
               until: str | int | None = None, maps: OwnerMaps | None = None) -> Iterator[Change]:
    """Every restorable state (oldest first) with the b-trees its changes touched.

    Pages a state changed that no b-tree owns there (freed by a DROP or DELETE)
    are charged to their owner in the state before, so a dropped table shows
    under its old name.
    """
    replica = open_replica(url)
    chains = replica.chains_for()
    low, high = bound(replica, since), bound(replica, until)
    own = maps or OwnerMaps(url, replica)
    try:
        for entry in replica.history():
            if low is not None and entry.txid < low or high is not None and entry.txid > high:
                continue
            finest = chains.finest(entry.txid)
            (meta,) = replica.metas([finest])
            before = replica.state(finest.min_txid - 1) if finest.min_txid - 1 in chains else None
            old = own.owners(before) if before is not None else {}
            owners = own.owners(replica.state(entry.txid), before, meta)
            tables = _count_names(meta.tail.index, owners, old)
            if table is None or table in tables:
                yield Change(entry.txid, entry.timestamp, finest.level, finest.min_txid, tables)
    finally:
        if maps is None:
            own.close()


def _count_names(pgnos: Iterable[int], owners: Mapping[int, _Owner],
                 old: Mapping[int, _Owner]) -> dict[str, int]:
    """Pages per owner; a page free now is charged to what owned it before (a dropped table)."""
    counts: dict[str, int] = {}
    for pgno in pgnos:
        owner = owners.get(pgno) or old.get(pgno)
        name = owner.name if owner is not None else FREE
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
