"""Which rowid ranges of a table can differ between two states, reading few pages.

The LTX files between two states name every page any transaction in between
wrote. A table page nobody wrote holds the same bytes in both states, and so
does every page under it if none of those was written either. So only the
written pages are read (one batched round per state), and from the root only
the paths towards written pages of the table are followed, one level per
round, all the children a level needs at once. Every other child is an
untouched subtree: where both states route a rowid into the same untouched
subtree, its row is the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

from . import btree
from .replica import Charge, Replica, State
from .storage.base import LtxObject

Range = tuple[int | None, int | None]  # (exclusive low, inclusive high); None: unbounded
#: Above this share of the database written, classifying pages costs more than a scan.
MOST_WRITTEN = 0.5
#: More candidate keys than this: one scan is cheaper than a lookup per key.
MAX_KEYS = 20_000


class Segment(NamedTuple):
    """Rowids (low, high] that one state routes to one page: untouched (`clean`) or not."""

    low: int | None
    high: int | None
    pgno: int
    clean: bool


def written_between(replica: Replica, old: State, new: State) -> set[int] | None:
    """Page numbers any transaction between two states may have changed; None without a chain.

    The union of the page indexes of files chaining exactly from one state to
    the other (compacted files carry the union of what they cover). A page
    outside it kept its bytes, unless the database shrank below it meanwhile,
    so pages above the smallest size on the way count as written too.
    """
    low, high = sorted((old.txid, new.txid))
    reach: dict[int, list[LtxObject]] = {low: []}
    for obj in sorted(replica.files, key=lambda o: (o.max_txid, -o.level)):
        path = reach.get(obj.min_txid - 1)
        if path is not None and obj.max_txid <= high and (
                obj.max_txid not in reach or len(path) + 1 < len(reach[obj.max_txid])):
            reach[obj.max_txid] = [*path, obj]
    if high not in reach:
        return None
    metas = replica.metas(reach[high])
    smallest = min([old.commit, new.commit, *(m.header.commit for m in metas)])
    written = {p for m in metas for p in m.tail.index}
    return written | set(range(smallest + 1, max(old.commit, new.commit) + 1))


def route(replica: Replica, state: State, root: int, keys: Iterable[int], written: set[int],
          charge: Charge) -> tuple[list[Segment], set[int]] | None:
    """Follow a table b-tree from `root` towards `keys`, reading each level in one round.

    Returns the segments partitioning all rowids (a page reached is clean when
    unwritten; a child not followed is an untouched subtree, hence clean) and
    every page passed; None if the pages are not a well-formed table b-tree.
    """
    level: dict[int, tuple[btree.Child, list[int]]] = {root: (btree.Child(root, None, None), sorted(set(keys)))}
    segments: list[Segment] = []
    passed: set[int] = set()
    while level:
        pages = replica.read_pages(state, list(level), charge)
        deeper: dict[int, tuple[btree.Child, list[int]]] = {}
        for pgno, (node, wanted) in level.items():
            page, kind = pages.get(pgno), btree.kind(pages.get(pgno), pgno)
            if pgno in passed or kind not in (btree.TABLE_LEAF, btree.TABLE_INTERIOR):
                return None
            passed.add(pgno)
            if kind == btree.TABLE_LEAF:
                segments.append(Segment(node.low, node.high, pgno, pgno not in written))
                continue
            assert page is not None
            for child in btree.interior_children(page, pgno, node.low, node.high):
                inside = [k for k in wanted if (child.low is None or k > child.low)
                          and (child.high is None or k <= child.high)]
                if inside or child.pgno in written:
                    deeper[child.pgno] = (child, inside)
                else:
                    segments.append(Segment(child.low, child.high, child.pgno, True))
        level = deeper
    segments.sort(key=lambda s: float("-inf") if s.low is None else s.low)
    return segments, passed


def dirty_ranges(old: list[Segment], new: list[Segment]) -> list[Range]:
    """Where the two partitions disagree: not the same clean subtree on both sides."""
    out: list[Range] = []
    i = j = 0
    low: int | None = None
    while i < len(old) and j < len(new):
        a, b = old[i], new[j]
        high = _min_high(a.high, b.high)
        if not (a.clean and b.clean and a.pgno == b.pgno):
            out.append((low, high))
        low = high
        if a.high == high:
            i += 1
        if b.high == high:
            j += 1
    return union(out)


def _min_high(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True)
class _Side:
    replica: Replica
    state: State
    root: int
    charge: Charge

    def read(self, pgnos: Iterable[int]) -> dict[int, bytes]:
        return self.replica.read_pages(self.state, [p for p in pgnos if p <= self.state.commit], self.charge)


@dataclass(frozen=True)
class _Written:
    """The pages written between two states, read in both (one batched round each)."""

    old: _Side
    new: _Side
    pages: set[int]
    before: dict[int, bytes]
    after: dict[int, bytes]


def _written_pages(old_file: Any, new_file: Any, old_root: int, new_root: int) -> _Written | None:
    """Written pages in both states; None when reading them cannot narrow a diff: other
    replicas or page sizes, a moved root, most of the database written, or a written page
    that may be an overflow page in both states (an UPDATE that changes only a row's
    overflowing tail rewrites overflow pages, not the b-tree page holding the row)."""
    replica: Replica = old_file.replica
    old = _Side(replica, old_file.state, old_root, old_file.charge)
    new = _Side(replica, new_file.state, new_root, new_file.charge)
    if new_file.replica is not replica or old.state.page_size != new.state.page_size or old_root != new_root:
        return None
    written = written_between(replica, old.state, new.state)
    if written is None:
        map_old, map_new = replica.page_map(old.state), replica.page_map(new.state)
        written = {p for p in set(map_old) | set(map_new) if map_old.get(p) != map_new.get(p)}
    if len(written) > MOST_WRITTEN * max(old.state.commit, new.state.commit):
        return None
    found = _Written(old, new, written, old.read(written), new.read(written))
    return None if _maybe_overflow(old, new, written, found.before, found.after) else found


def changed_ranges(old_file: Any, new_file: Any, old_root: int, new_root: int) -> list[Range] | None:
    """Rowid ranges outside which both states hold identical rows; None: cannot tell, scan all."""
    written = _written_pages(old_file, new_file, old_root, new_root)
    if written is None:
        return None
    routed = []
    for side, pages in ((written.old, written.before), (written.new, written.after)):
        keys = [btree.first_key(page, p) for p, page in pages.items()
                if btree.kind(page, p) in (btree.TABLE_LEAF, btree.TABLE_INTERIOR)]
        found = route(side.replica, side.state, side.root, [k for k in keys if k is not None], written.pages,
                      side.charge)
        if found is None:
            return None
        routed.append(found[0])
    return dirty_ranges(*routed)


def changed_keys(old_file: Any, new_file: Any, old_root: int, new_root: int, count: int) -> set[tuple] | None:
    """For a WITHOUT ROWID table (an index b-tree keyed by its first `count` columns): keys
    outside which both states hold identical rows; None: cannot tell, scan all.

    A row on a page nobody wrote is on that same page in both states (moving,
    changing or deleting it writes the page it leaves), so every changed row is
    on a written page in one state or the other. Those pages are read anyway;
    the keys on every written index page are candidates (pages of other indexes
    propose keys that match nothing, which costs a lookup, never a wrong row).
    """
    written = _written_pages(old_file, new_file, old_root, new_root)
    if written is None:
        return None
    header = written.old.read([1]).get(1, bytes(100))
    if header[56:60] != b"\0\0\0\1":  # text is decoded as UTF-8: other encodings are scanned
        return None
    usable = written.old.state.page_size - header[20]
    keys: set[tuple] = set()
    for pages in (written.before, written.after):
        for pgno, page in pages.items():
            if btree.kind(page, pgno) in (btree.INDEX_LEAF, btree.INDEX_INTERIOR):
                found = btree.index_cell_keys(page, pgno, count, usable)
                if found is None or len(keys) + len(found) > MAX_KEYS:
                    return None
                keys.update(found)
    return keys


def _maybe_overflow(old: _Side, new: _Side, written: set[int], pages_old: dict[int, bytes],
                    pages_new: dict[int, bytes]) -> bool:
    """Could a written page be an overflow page in both states (first byte 0, not free)?"""
    both = min(old.state.commit, new.state.commit)
    suspects = {p for p in written if 1 < p <= both
                and pages_old.get(p, b"\0")[:1] == b"\0" and pages_new.get(p, b"\0")[:1] == b"\0"}
    if not suspects:
        return False
    return bool(suspects - free_pages(old) - free_pages(new))


def free_pages(side: _Side) -> set[int]:
    """Every page on the freelist of a state (trunks and leaves), reading only trunks."""
    trunk = btree.freelist_trunk(side.read([1]).get(1, bytes(100)))
    free: set[int] = set()
    while trunk and trunk not in free and trunk <= side.state.commit:
        free.add(trunk)
        trunk, leaves = btree.trunk_entries(side.read([trunk]).get(trunk, bytes(8)))
        free.update(leaves)
    return free


def union(ranges: list[Range]) -> list[Range]:
    """Sorted, merged (low, high] ranges; None bounds are infinite."""
    lowest = float("-inf")
    merged: list[Range] = []
    for low, high in sorted(ranges, key=lambda r: lowest if r[0] is None else r[0]):
        if merged:
            last_low, last_high = merged[-1]
            if last_high is None or low is None or low <= last_high:
                merged[-1] = (last_low, None if last_high is None or high is None else max(last_high, high))
                continue
        merged.append((low, high))
    return merged
