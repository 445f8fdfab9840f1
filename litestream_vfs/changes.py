"""What changed, and when: a per-state change log and row-level diffs between two states.

The log needs no page contents for most states: the pages a state changed are
the page numbers in the index of the finest LTX file ending there. Naming them
needs a page -> b-tree map of the state, which SQLite's `dbstat` builds by
walking every b-tree; that map is reused for the next state whenever the
pages it changed are provably only b-tree leaves that stayed leaves (see
`OwnerMaps.unchanged_structure`), so `dbstat` runs only after structural changes.

A diff walks only the interior pages of the table's b-tree in both states.
A leaf with the same page number and the same frame (LTX file + offset) in
both states holds byte-identical rows, so only the key ranges of the other
leaves are read back through SQL and merge-joined.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping

import apsw

from .connect import connect, open_replica, replica_uri, select_state
from .errors import ReplicaError
from .pages import FileMeta, PageLocation
from .replica import Replica, State
from .storage.base import LtxObject
from .timeparse import format_txid
from .vfs import file_of

#: The name given to pages that no b-tree owns (free pages, pointer maps, the lock page).
FREE = "(freelist)"
_TXID_TEXT = re.compile(r"^(0x)?[0-9a-fA-F]{1,16}$")
_LEAF_TYPES = (0x0A, 0x0D)
_TABLE_INTERIOR, _TABLE_LEAF = 0x05, 0x0D
_SCHEMA_COOKIE = 40


# -- resolving what the user typed ------------------------------------------------
def resolve_state(replica: Replica, when: str | int) -> State:
    """A state from an int TXID, hex TXID text (up to 16 digits, 0x optional), `latest`, or time text."""
    if isinstance(when, int):
        return replica.state(when)
    text = when.strip()
    if _TXID_TEXT.match(text):
        return select_state(replica, txid=text)
    return select_state(replica, time=text)


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
        pages = self.replica.fetcher.pages(
            {p: PageLocation(change.obj, e.offset, e.size) for p, e in change.tail.index.items()},
            (self.replica.counters,))
        if 1 in pages:
            cookie = slice(_SCHEMA_COOKIE, _SCHEMA_COOKIE + 4)
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
    low, high = _bound(replica, since), _bound(replica, until)
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


def _bound(replica: Replica, when: str | int | None) -> int | None:
    return None if when is None else resolve_state(replica, when).txid


def _count_names(pgnos: Iterable[int], owners: Mapping[int, _Owner],
                 old: Mapping[int, _Owner]) -> dict[str, int]:
    """Pages per owner; a page free now is charged to what owned it before (a dropped table)."""
    counts: dict[str, int] = {}
    for pgno in pgnos:
        owner = owners.get(pgno) or old.get(pgno)
        name = owner.name if owner is not None else FREE
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


# -- row-level diffs ---------------------------------------------------------------
@dataclass(frozen=True)
class TableShape:
    """How one state's table is read: its columns, its key, its b-tree root."""

    columns: tuple[str, ...]
    key_names: tuple[str, ...]  # as reported in "key"
    key_exprs: tuple[str, ...]  # as selected and ordered by
    rowid: bool
    rootpage: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_shape(connection: apsw.Connection, schema: str, table: str) -> TableShape | None:
    """The table's shape in `schema`, or None when the table does not exist there."""
    found = connection.execute(f"SELECT rootpage FROM {_quote(schema)}.sqlite_schema "
                               "WHERE type = 'table' AND name = ?", (table,)).fetchall()
    if not found:
        return None
    source = f"{_quote(schema)}.{_quote(table)}"
    columns = tuple(name for name, in connection.execute(
        f"SELECT name FROM {_quote(schema)}.pragma_table_xinfo(?) WHERE hidden != 1 ORDER BY cid", (table,)))
    info = connection.execute(f"SELECT name, type, pk FROM {_quote(schema)}.pragma_table_info(?) "
                              "WHERE pk > 0 ORDER BY pk", (table,)).fetchall()
    try:
        connection.execute(f"SELECT rowid FROM {source} LIMIT 0").fetchall()
        rowid = True
    except apsw.SQLError:
        rowid = False
    if not rowid:
        names = tuple(name for name, _, _ in info)
        return TableShape(columns, names, tuple(_quote(n) for n in names), False, found[0][0])
    alias = info[0][0] if len(info) == 1 and info[0][1].upper() == "INTEGER" else "rowid"
    return TableShape(columns, (alias,), ("rowid",), True, found[0][0])


def _sort_key(values: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    """SQLite's BINARY ordering of mixed values: NULL < numbers < text < blobs."""
    rank = {type(None): 0, int: 1, float: 1, str: 2, bytes: 3}
    return tuple((rank[type(v)], 0 if v is None else v) for v in values)


Range = tuple[int | None, int | None]  # (exclusive low, inclusive high); None: unbounded


def _rows(connection: apsw.Connection, schema: str, table: str, shape: TableShape,
          key_exprs: tuple[str, ...], ranges: list[Range]) -> Iterator[tuple[tuple, dict[str, Any]]]:
    """(key, row) in key order, within `ranges` (sorted, disjoint) or everywhere if [(None, None)]."""
    select = ", ".join(key_exprs) + ", *"
    order = ", ".join(f"{e} COLLATE BINARY" if not shape.rowid else e for e in key_exprs)
    cursor = connection.cursor()
    for low, high in ranges:
        where = [f"rowid > {int(low)}"] if low is not None else []
        where += [f"rowid <= {int(high)}"] if high is not None else []
        sql = (f"SELECT {select} FROM {_quote(schema)}.{_quote(table)}"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order}")
        width = len(key_exprs)
        for row in cursor.execute(sql):
            yield tuple(row[:width]), dict(zip(shape.columns, row[width:]))


def _merge(before: Iterator[tuple[tuple, dict]], after: Iterator[tuple[tuple, dict]],
           key_names: tuple[str, ...], common: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Merge-join two key-ordered row streams into added/removed/changed records."""
    b = next(before, None)
    a = next(after, None)
    while b is not None or a is not None:
        order = 0 if b is None or a is None else (
            (_sort_key(b[0]) > _sort_key(a[0])) - (_sort_key(b[0]) < _sort_key(a[0])))
        if a is None or (b is not None and order < 0):
            yield {"change": "removed", "key": dict(zip(key_names, b[0])), "before": b[1], "after": None}
            b = next(before, None)
        elif b is None or order > 0:
            yield {"change": "added", "key": dict(zip(key_names, a[0])), "before": None, "after": a[1]}
            a = next(after, None)
        else:
            if any(b[1][c] != a[1][c] for c in common):
                yield {"change": "changed", "key": dict(zip(key_names, b[0])), "before": b[1], "after": a[1]}
            b, a = next(before, None), next(after, None)


def diff_schemas(connection: apsw.Connection, table: str, before: str = "main",
                 after: str = "after") -> Iterator[dict[str, Any]]:
    """Rows of `table` added, removed and changed from schema `before` to schema `after`.

    Both schemas are litestream VFS files of the same replica. Rows are matched
    by rowid (reported under the INTEGER PRIMARY KEY's name if there is one)
    or by PRIMARY KEY for WITHOUT ROWID tables; values are compared on the
    columns both states have, and each side reports its own columns.
    """
    old, new = table_shape(connection, before, table), table_shape(connection, after, table)
    if old is None and new is None:
        raise ReplicaError(f"table {table!r} exists in neither state")
    ref = new or old
    assert ref is not None
    if old is not None and new is not None and old.rowid != new.rowid:
        raise ReplicaError(f"table {table!r} changed between rowid and WITHOUT ROWID; rows cannot be matched")
    ranges: list[Range] = [(None, None)]
    if old is not None and new is not None and ref.rowid:
        found = changed_ranges(file_of(connection, before), file_of(connection, after),
                               old.rootpage, new.rootpage)
        ranges = ranges if found is None else found
    empty: Iterator[tuple[tuple, dict]] = iter(())
    rows_before = _rows(connection, before, table, old, ref.key_exprs, ranges) if old else empty
    rows_after = _rows(connection, after, table, new, ref.key_exprs, ranges) if new else empty
    common = tuple(c for c in (old.columns if old else ()) if new is not None and c in new.columns)
    yield from _merge(rows_before, rows_after, ref.key_names, common)


def diff(url: str, table: str, from_: str | int, to: str | int) -> Iterator[dict[str, Any]]:
    """Row changes of `table` between two states (TXIDs or time text) of a replica."""
    replica = open_replica(url)
    old, new = resolve_state(replica, from_), resolve_state(replica, to)
    connection = connect(url, txid=format_txid(old.txid))
    try:
        connection.execute("ATTACH ? AS after", (replica_uri(url, txid=format_txid(new.txid)),))
        yield from diff_schemas(connection, table)
    finally:
        connection.close()


# -- finding the leaves that differ ---------------------------------------------------
def _varint(data: bytes, at: int) -> int:
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    else:
        value = (value << 8) | data[at + 8]
    return value - (1 << 64) if value >= 1 << 63 else value


def _children(page: bytes, pgno: int, low: int | None, high: int | None) -> list[tuple[int, int | None, int | None]]:
    """(child, low, high) of an interior table page: cell keys bound their left children."""
    head = 100 if pgno == 1 else 0
    count, = struct.unpack_from(">H", page, head + 3)
    right, = struct.unpack_from(">I", page, head + 8)
    children = []
    for i in range(count):
        cell, = struct.unpack_from(">H", page, head + 12 + 2 * i)
        child, = struct.unpack_from(">I", page, cell)
        key = _varint(page, cell + 4)
        children.append((child, low, key))
        low = key
    children.append((right, low, high))
    return children


@dataclass(frozen=True)
class _Tree:
    interior: frozenset[int]
    leaves: Mapping[int, Range]


def _kind(page: bytes | None, pgno: int) -> int | None:
    return page[100 if pgno == 1 else 0] if page else None


def _walk(replica: Replica, state: State, root: int, charge: tuple) -> _Tree | None:
    """Interior pages and leaf key ranges of a table b-tree, reading no leaf but one.

    Every leaf of a b-tree is at the same depth, so one page of a level tells
    whether the whole level is leaves; interior levels are read in one round each.
    """
    interior: set[int] = set()
    level: list[tuple[int, int | None, int | None]] = [(root, None, None)]
    while True:
        probe = level[0][0]
        if _kind(replica.read_pages(state, [probe], charge).get(probe), probe) == _TABLE_LEAF:
            return _Tree(frozenset(interior), {p: (low, high) for p, low, high in level})
        pages = replica.read_pages(state, [p for p, _, _ in level], charge)
        deeper = []
        for pgno, low, high in level:
            page = pages.get(pgno)
            if _kind(page, pgno) != _TABLE_INTERIOR or pgno in interior:
                return None  # not a well-formed table b-tree: let the caller scan everything
            interior.add(pgno)
            deeper += _children(page, pgno, low, high)
        level = deeper


def _free_pages(replica: Replica, state: State, charge: tuple) -> set[int]:
    """Every page on the freelist of a state (trunks and leaves), reading only trunks."""
    page1 = replica.read_pages(state, [1], charge).get(1, b"")
    trunk, = struct.unpack_from(">I", page1, 32)
    free: set[int] = set()
    while trunk and trunk not in free and trunk <= state.commit:
        free.add(trunk)
        page = replica.read_pages(state, [trunk], charge).get(trunk, bytes(8))
        following, count = struct.unpack_from(">II", page, 0)
        free.update(struct.unpack_from(f">{min(count, len(page) // 4 - 2)}I", page, 8))
        trunk = following
    return free


def _maybe_overflow(replica: Replica, old: State, new: State, pgnos: set[int], charge: tuple) -> bool:
    """Could one of `pgnos` be an overflow page in both states (first byte 0, not free)?"""
    if not pgnos:
        return False
    pages_old = replica.read_pages(old, pgnos, charge)
    pages_new = replica.read_pages(new, pgnos, charge)
    suspects = {p for p in pgnos if pages_old.get(p, b"\0")[:1] == b"\0" and pages_new.get(p, b"\0")[:1] == b"\0"}
    if not suspects:
        return False
    return bool(suspects - _free_pages(replica, old, charge) - _free_pages(replica, new, charge))


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


def changed_ranges(old_file: Any, new_file: Any, old_root: int, new_root: int) -> list[Range] | None:
    """Rowid ranges outside which both states hold identical rows; None: cannot tell, scan all.

    A leaf reached in both trees at a page number no transaction in between
    wrote is byte-identical, so its rows are in both states unchanged; every
    other row lies in the range of a leaf that differs. One trap: an UPDATE
    that changes only the overflowing tail of a row rewrites overflow pages,
    not the leaf. So every written page outside both trees must provably not
    be an overflow page (b-tree pages start with a non-zero type byte, free
    pages are listed).
    """
    replica: Replica = old_file.replica
    old, new = old_file.state, new_file.state
    if new_file.replica is not replica or old.page_size != new.page_size:
        return None
    tree_old = _walk(replica, old, old_root, old_file.charge)
    tree_new = _walk(replica, new, new_root, new_file.charge)
    if tree_old is None or tree_new is None:
        return None
    written = written_between(replica, old, new)
    if written is None:
        map_old, map_new = replica.page_map(old), replica.page_map(new)
        written = {p for p in set(map_old) | set(map_new) if map_old.get(p) != map_new.get(p)}
    same = tree_old.leaves.keys() & tree_new.leaves.keys() - written
    outside = written - tree_old.interior - tree_new.interior - set(tree_old.leaves) - set(tree_new.leaves)
    outside = {p for p in outside if p <= min(old.commit, new.commit)}
    if _maybe_overflow(replica, old, new, outside, old_file.charge):
        return None
    dirty = [r for p, r in tree_old.leaves.items() if p not in same]
    dirty += [r for p, r in tree_new.leaves.items() if p not in same]
    return _union(dirty)


def _union(ranges: list[Range]) -> list[Range]:
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
