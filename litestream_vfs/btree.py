"""SQLite b-tree pages as bytes: just enough of the file format to follow table b-trees.

Pure functions, no I/O: the kind of a page, the children and separator keys of
a table interior page, the rowids on a table leaf, the freelist on a trunk.
Page 1 carries the 100-byte database header before its b-tree header.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

TABLE_INTERIOR, TABLE_LEAF = 0x05, 0x0D
INDEX_INTERIOR, INDEX_LEAF = 0x02, 0x0A
BTREE_KINDS = (TABLE_INTERIOR, TABLE_LEAF, INDEX_INTERIOR, INDEX_LEAF)
#: Offset of the schema cookie in page 1 (bumped by every schema change).
SCHEMA_COOKIE = 40


class Child(NamedTuple):
    """One child of an interior table page and the rowids it holds: (low, high], None = unbounded."""

    pgno: int
    low: int | None
    high: int | None


def header_offset(pgno: int) -> int:
    return 100 if pgno == 1 else 0


def kind(page: bytes | None, pgno: int) -> int | None:
    """The b-tree page type byte (0x02, 0x05, 0x0A, 0x0D), else the first byte; None for no page."""
    if not page:
        return None
    return page[header_offset(pgno)]


def varint(data: bytes, at: int) -> tuple[int, int]:
    """(value as a signed 64-bit integer, bytes used) of a SQLite varint."""
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return (value - (1 << 64) if value >= 1 << 63 else value), i + 1
    value = (value << 8) | data[at + 8]
    return (value - (1 << 64) if value >= 1 << 63 else value), 9


def _cell_pointers(page: bytes, pgno: int) -> list[int]:
    head = header_offset(pgno)
    count, = struct.unpack_from(">H", page, head + 3)
    start = head + (12 if page[head] in (TABLE_INTERIOR, INDEX_INTERIOR) else 8)
    return list(struct.unpack_from(f">{count}H", page, start))


def interior_children(page: bytes, pgno: int, low: int | None, high: int | None) -> list[Child]:
    """Children of a table interior page covering (low, high]: each cell's key bounds its left child."""
    head = header_offset(pgno)
    right, = struct.unpack_from(">I", page, head + 8)
    children = []
    for cell in _cell_pointers(page, pgno):
        child, = struct.unpack_from(">I", page, cell)
        key, _ = varint(page, cell + 4)
        children.append(Child(child, low, key))
        low = key
    children.append(Child(right, low, high))
    return children


def leaf_rowids(page: bytes, pgno: int) -> list[int]:
    """The rowids on a table leaf page, in key order."""
    rowids = []
    for cell in _cell_pointers(page, pgno):
        _, used = varint(page, cell)  # payload size
        rowid, _ = varint(page, cell + used)
        rowids.append(rowid)
    return rowids


def first_key(page: bytes, pgno: int) -> int | None:
    """A rowid that leads to this table page from its root: its first cell's key (None if empty)."""
    page_kind = kind(page, pgno)
    if page_kind == TABLE_LEAF:
        rowids = leaf_rowids(page, pgno)
        return rowids[0] if rowids else None
    if page_kind == TABLE_INTERIOR:
        return interior_children(page, pgno, None, None)[0].high
    return None


def child_for(page: bytes, pgno: int, key: int, low: int | None, high: int | None) -> Child:
    """The child of a table interior page whose range holds `key`."""
    for child in interior_children(page, pgno, low, high):
        if child.high is None or key <= child.high:
            return child
    raise ValueError(f"page {pgno}: no child holds rowid {key}")


def freelist_trunk(page1: bytes) -> int:
    """The first freelist trunk page named by the database header (0: none)."""
    trunk, = struct.unpack_from(">I", page1, 32)
    return trunk


def trunk_entries(trunk: bytes) -> tuple[int, list[int]]:
    """(next trunk, leaf pages) of a freelist trunk page."""
    following, count = struct.unpack_from(">II", trunk, 0)
    count = min(count, len(trunk) // 4 - 2)
    return following, list(struct.unpack_from(f">{count}I", trunk, 8))


def _int(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


#: Serial type -> (size, decoder) for the fixed-size kinds of a record value.
_FIXED = {0: (0, lambda b: None), 1: (1, _int), 2: (2, _int), 3: (3, _int), 4: (4, _int), 5: (6, _int),
          6: (8, _int), 7: (8, lambda b: struct.unpack(">d", b)[0]), 8: (0, lambda b: 0), 9: (0, lambda b: 1)}


def record_prefix(payload: bytes, count: int) -> tuple | None:
    """The first `count` values of a SQLite record (UTF-8 text), None if `payload` ends before them."""
    try:
        header_size, at = varint(payload, 0)
        types = []
        while at < header_size and len(types) < count:
            serial, used = varint(payload, at)
            types.append(serial)
            at += used
    except IndexError:
        return None
    values, at = [], header_size
    for serial in types:
        if serial in _FIXED:
            size, decode = _FIXED[serial]
        elif serial >= 12:
            size = (serial - 12) // 2
            decode = bytes if serial % 2 == 0 else (lambda b: b.decode("utf-8", "surrogateescape"))
        else:
            return None  # 10 and 11 are reserved
        if at + size > len(payload):
            return None
        values.append(decode(payload[at:at + size]))
        at += size
    return tuple(values) if len(values) == count else None


def index_cell_keys(page: bytes, pgno: int, count: int, usable: int) -> list[tuple] | None:
    """The first `count` record values of every cell of an index b-tree page (interior or leaf),
    from the bytes on the page; None if some cell keeps part of them on overflow pages."""
    interior = kind(page, pgno) == INDEX_INTERIOR
    most = (usable - 12) * 64 // 255 - 23
    least = (usable - 12) * 32 // 255 - 23
    keys = []
    for cell in _cell_pointers(page, pgno):
        at = cell + (4 if interior else 0)
        size, used = varint(page, at)
        local = size if size <= most else least + (size - least) % (usable - 4)
        local = local if local <= most else least
        found = record_prefix(page[at + used:at + used + local], count)
        if found is None:
            return None
        keys.append(found)
    return keys
