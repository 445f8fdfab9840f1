"""Row-level diffs between two states of one table, keyed the way the table is keyed.

Both states are read through SQL in key order and merge-joined, streaming.
For rowid tables only the rowid ranges `leafdiff` finds possibly changed are
read: ordered by rowid when rows are keyed by it, else through SQLite's
sorter by the declared key (rows outside those ranges are identical in both
states, so they cannot be part of the diff whatever their key). For WITHOUT
ROWID tables only the keys found on written pages are looked up.
"""

from __future__ import annotations

from typing import Any, Iterator

import apsw

from .connect import connect, open_replica, replica_uri
from .errors import ReplicaError
from .leafdiff import Range, changed_keys, changed_ranges
from .state_range import resolve_state
from .tablekey import TableShape, quote, table_shape
from .timeparse import format_txid
from .vfs import file_of

_INT64 = (-(1 << 63), (1 << 63) - 1)
#: Ranges bound into one statement (two parameters each, well under SQLite's 32,766).
MAX_RANGES = 4096
Keyed = tuple[tuple[Any, ...], dict[str, Any]]


def sort_key(values: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    """SQLite's BINARY ordering of mixed values: NULL < numbers < text < blobs."""
    rank = {type(None): 0, bool: 1, int: 1, float: 1, str: 2, bytes: 3}
    return tuple((rank[type(v)], 0 if v is None else v) for v in values)


def rows_in(connection: apsw.Connection, schema: str, shape: TableShape, key: TableShape,
            ranges: list[Range]) -> Iterator[Keyed]:
    """(key, row) of `shape`'s table in `key`'s order, within rowid `ranges` ([(None, None)]: all)."""
    source = f"{quote(schema)}.{quote(shape.table)} AS _row"
    select = ", ".join(key.key_exprs) + ", _row.*"
    width = len(key.key_exprs)
    cursor = connection.cursor()
    if key.by_rowid:  # b-tree order: one streaming range at a time
        for low, high in ranges:
            where = [f"rowid > {int(low)}"] if low is not None else []
            where += [f"rowid <= {int(high)}"] if high is not None else []
            sql = f"SELECT {select} FROM {source}{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY rowid"
            for row in cursor.execute(sql):
                yield tuple(row[:width]), dict(zip(shape.columns, row[width:]))
        return
    order = ", ".join(f"{e} COLLATE BINARY" for e in key.key_exprs)
    if ranges == [(None, None)]:
        sql, params = f"SELECT {select} FROM {source} ORDER BY {order}", ()
    else:  # rowid ranges outermost (CROSS JOIN keeps that order), then the sorter
        bounds = [(_INT64[0] if low is None else low + 1, _INT64[1] if high is None else high)
                  for low, high in at_most(ranges, MAX_RANGES) if low is None or low < _INT64[1]]
        values = ", ".join("(?, ?)" for _ in bounds)
        sql = (f"WITH ranges(lo, hi) AS (VALUES {values}) SELECT {select} FROM ranges CROSS JOIN {source}"
               f" ON _row.rowid BETWEEN ranges.lo AND ranges.hi ORDER BY {order}")
        params = tuple(v for pair in bounds for v in pair)
    for row in cursor.execute(sql, params):
        yield tuple(row[:width]), dict(zip(shape.columns, row[width:]))


def rows_at(connection: apsw.Connection, schema: str, shape: TableShape, keys: set[tuple]) -> Iterator[Keyed]:
    """(key, row) for each of `keys` present in `shape`'s table, in key order (a lookup each)."""
    source = f"{quote(schema)}.{quote(shape.table)} AS _row"
    sql = f"SELECT {', '.join(shape.key_exprs)}, _row.* FROM {source} WHERE {shape.where()}"
    width = len(shape.key_exprs)
    found: dict[tuple, dict[str, Any]] = {}
    cursor = connection.cursor()
    for key in keys:
        for row in cursor.execute(sql, key):
            found[tuple(row[:width])] = dict(zip(shape.columns, row[width:]))
    for key in sorted(found, key=sort_key):
        yield key, found[key]


def at_most(ranges: list[Range], limit: int) -> list[Range]:
    """Sorted disjoint ranges joined in runs so that at most `limit` remain (each covers its run)."""
    if len(ranges) <= limit:
        return ranges
    size = -(-len(ranges) // limit)
    return [(ranges[i][0], ranges[min(i + size, len(ranges)) - 1][1]) for i in range(0, len(ranges), size)]


def merge(before: Iterator[Keyed], after: Iterator[Keyed], key_names: tuple[str, ...],
          common: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Merge-join two key-ordered row streams into added/removed/changed records."""
    b = next(before, None)
    a = next(after, None)
    while b is not None or a is not None:
        order = 0 if b is None or a is None else (
            (sort_key(b[0]) > sort_key(a[0])) - (sort_key(b[0]) < sort_key(a[0])))
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

    Both schemas are litestream VFS files of the same replica. Rows are
    matched by the declared PRIMARY KEY (rowid only where none is declared,
    reported under the INTEGER PRIMARY KEY's name if that is the key); values
    are compared on the columns both states have, and each side reports its
    own columns.
    """
    old, new = table_shape(connection, before, table), table_shape(connection, after, table)
    if old is None and new is None:
        raise ReplicaError(f"table {table!r} exists in neither state")
    ref = new or old
    assert ref is not None
    if old is not None and new is not None and (old.rowid, old.key_names) != (new.rowid, new.key_names):
        raise ReplicaError(f"table {table!r} changed its key between the two states "
                           f"({', '.join(old.key_names)} -> {', '.join(new.key_names)}); rows cannot be matched")
    common = tuple(c for c in (old.columns if old else ()) if new is not None and c in new.columns)
    if old is not None and new is not None and not ref.rowid:
        files = file_of(connection, before), file_of(connection, after)
        keys = changed_keys(*files, old.rootpage, new.rootpage, len(ref.key_names))
        if keys is not None:
            yield from merge(rows_at(connection, before, old, keys), rows_at(connection, after, new, keys),
                             ref.key_names, common)
            return
    ranges: list[Range] = [(None, None)]
    if old is not None and new is not None and ref.rowid:
        found = changed_ranges(file_of(connection, before), file_of(connection, after),
                               old.rootpage, new.rootpage)
        ranges = ranges if found is None else found
    if not ranges:
        return
    empty: Iterator[Keyed] = iter(())
    rows_before = rows_in(connection, before, old, ref, ranges) if old else empty
    rows_after = rows_in(connection, after, new, ref, ranges) if new else empty
    yield from merge(rows_before, rows_after, ref.key_names, common)


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
