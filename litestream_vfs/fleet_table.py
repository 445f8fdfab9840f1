"""Rows of many databases as one Arrow table: `db` first, columns united by name, one type per column.

SQLite types values, not columns, and tenants' schemas drift, so a column's
Arrow type is decided from all of its values: integers -> int64, integers
and reals -> float64, text -> string, blobs -> binary, nothing but NULL ->
null (as `arrow_types` types one query's columns); any other mix -> string
(blobs as `x'00ff'`), never a silently wrong number.

That decision needs every value, so a share of the databases (one worker's)
is first built losslessly (`TableBuilder.table`: a column whose values mix
kinds is an Arrow dense union), and `merge_tables` types the shares'
columns once, in order: the local engine's table is the merge of its one
share, so Ray, Dask and local results are equal table for table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .arrow_types import ColumnTypeError, typed_array

try:
    import pyarrow as pa
except ImportError as exc:  # an extra: say which
    raise ImportError("fleets return Arrow tables: pip install 'litestream-apsw[fleet]' (pyarrow)") from exc

DB_COLUMN = "db"


def column_names(names: Sequence[str]) -> list[str]:
    """`db` then the query's names, repeated ones made unique (`a`, `a.1`; a query's own `db` -> `db.1`)."""
    out: list[str] = []
    for name in [DB_COLUMN, *names]:
        unique, n = name, 0
        while unique in out:
            n += 1
            unique = f"{name}.{n}"
        out.append(unique)
    return out


def column_array(values: list[Any]) -> pa.Array:
    """One Arrow array for one column's values, typed by the rule in the module docstring."""
    if all(v is None for v in values):
        return pa.nulls(len(values))
    try:
        return typed_array("", None, values)  # one kind of value (ints with reals: float64)
    except ColumnTypeError:  # kinds that do not mix (or integers beyond a double): as text
        return pa.array([None if v is None else f"x'{v.hex()}'" if isinstance(v, bytes) else str(v)
                         for v in values], pa.string())


def lossless_array(values: list[Any]) -> pa.Array:
    """`column_array` where the values are of one kind; else a dense union keeping each value as it was."""
    kinds = sorted({type(v) for v in values if v is not None}, key=lambda kind: kind.__name__)
    if len(kinds) <= 1:
        return column_array(values)
    codes = {kind: code for code, kind in enumerate(kinds)}
    children: list[list[Any]] = [[] for _ in kinds]
    types, offsets = [], []
    for value in values:
        code = 0 if value is None else codes[type(value)]
        types.append(code)
        offsets.append(len(children[code]))
        children[code].append(value)
    return pa.UnionArray.from_dense(pa.array(types, pa.int8()), pa.array(offsets, pa.int32()),
                                    [column_array(child) for child in children],
                                    [kind.__name__ for kind in kinds])


class TableBuilder:
    """Collects each database's result, in the order added, into one table."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {DB_COLUMN: []}

    @property
    def rows(self) -> int:
        return len(self.columns[DB_COLUMN])

    def add(self, db: str, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """One database's result: its column names (from the cursor) and rows."""
        named = column_names(names)[1:]
        before = self.rows
        for name in named:
            self.columns.setdefault(name, [None] * before)
        added = 0
        for row in rows:
            for name, value in zip(named, row):
                self.columns[name].append(value)
            added += 1
        self.columns[DB_COLUMN].extend([db] * added)
        for values in self.columns.values():
            values.extend([None] * (before + added - len(values)))

    def table(self) -> pa.Table:
        """The rows so far, losslessly (see the module docstring); `merge_tables` types them."""
        return pa.table({name: lossless_array(values) for name, values in self.columns.items()})


def merge_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """Builders' tables concatenated in order, each column typed once from all of its values."""
    if not tables:
        return TableBuilder().table()
    names = list(dict.fromkeys(name for table in tables for name in table.column_names))
    merged = {}
    for name in names:
        parts = [chunk for table in tables for chunk in (
            table.column(name).chunks if name in table.column_names else [pa.nulls(table.num_rows)])]
        kinds = {part.type for part in parts if part.type != pa.null()}
        if len(kinds) <= 1 and not any(pa.types.is_union(kind) for kind in kinds):
            kind = kinds.pop() if kinds else pa.null()
            merged[name] = pa.chunked_array([part.cast(kind) for part in parts], kind)
        else:  # kinds differ: type from the values, as for one column
            merged[name] = column_array([v for part in parts for v in part.to_pylist()])
    return pa.table(merged)
