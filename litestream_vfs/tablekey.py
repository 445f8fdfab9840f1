"""How a table is keyed: its declared PRIMARY KEY, else its rowid; and keys typed by users.

Rows are matched across states by the key the table declares, because that is
what identifies a row to its users, and because VACUUM may renumber the rowids
of tables without an INTEGER PRIMARY KEY. Only a table that declares no key is
matched by rowid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import apsw

from .errors import ReplicaError

Key = int | str | Mapping[str, Any] | Sequence[Any]


def quote(name: str) -> str:
    """An SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableShape:
    """How one state's table is read: its columns, its key, its b-tree root."""

    table: str
    columns: tuple[str, ...]
    key_names: tuple[str, ...]  # as reported under "key"
    rowid: bool  # a rowid table: its b-tree is ordered by rowid
    by_rowid: bool  # rows are identified by rowid (no declared key, or an INTEGER PRIMARY KEY)
    rootpage: int

    @property
    def key_exprs(self) -> tuple[str, ...]:
        """The key as selected and ordered by."""
        return ("rowid",) if self.by_rowid else tuple(quote(n) for n in self.key_names)

    def where(self) -> str:
        """`key = ?` for every key column, ANDed (parameters in `key_names` order)."""
        return " AND ".join(f"{expr} = ?" for expr in self.key_exprs)


def table_shape(connection: apsw.Connection, schema: str, table: str) -> TableShape | None:
    """The table's shape in `schema`, or None when the table does not exist there."""
    found = connection.execute(f"SELECT rootpage FROM {quote(schema)}.sqlite_schema "
                               "WHERE type = 'table' AND name = ?", (table,)).fetchall()
    if not found:
        return None
    columns = tuple(name for name, in connection.execute(
        f"SELECT name FROM {quote(schema)}.pragma_table_xinfo(?) WHERE hidden != 1 ORDER BY cid", (table,)))
    keys = tuple(name for name, in connection.execute(
        f"SELECT name FROM {quote(schema)}.pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,)))
    try:
        connection.execute(f"SELECT rowid FROM {quote(schema)}.{quote(table)} LIMIT 0").fetchall()
        rowid = True
    except apsw.SQLError:
        rowid = False
    # A declared key with its own index (origin 'pk') is not a rowid alias.
    key_index = connection.execute(f"SELECT 1 FROM {quote(schema)}.pragma_index_list(?) WHERE origin = 'pk'",
                                   (table,)).fetchall()
    if not rowid:
        return TableShape(table, columns, keys, False, False, found[0][0])
    if not keys:
        return TableShape(table, columns, ("rowid",), True, True, found[0][0])
    return TableShape(table, columns, keys, True, not key_index, found[0][0])


def key_values(shape: TableShape, key: Key) -> tuple[Any, ...]:
    """The values of `key` in `shape.key_names` order.

    `key` is a rowid / INTEGER PRIMARY KEY value, a mapping {column: value},
    a sequence in key order, or text: JSON (an object, a list or a scalar) or,
    for a one-column key, the bare value itself.
    """
    names = shape.key_names
    if isinstance(key, str):
        try:
            key = json.loads(key)
        except ValueError:
            if len(names) != 1 or shape.by_rowid:
                raise ReplicaError(f"key {key!r} for {shape.table}: give "
                                   f"{_expected(shape)}") from None
            return (key,)
    if isinstance(key, Mapping):
        by_lower = {str(k).lower(): v for k, v in key.items()}
        wanted = {n.lower() for n in names}
        if set(by_lower) != wanted:
            raise ReplicaError(f"key {json.dumps(dict(key), default=str)} for {shape.table}: give {_expected(shape)}")
        values: tuple[Any, ...] = tuple(by_lower[n.lower()] for n in names)
    elif isinstance(key, (list, tuple)):
        values = tuple(key)
    else:
        values = (key,)
    if len(values) != len(names):
        raise ReplicaError(f"key {key!r} for {shape.table}: give {_expected(shape)}")
    if shape.by_rowid and not isinstance(values[0], int):
        raise ReplicaError(f"key {values[0]!r} for {shape.table}: the key is {names[0]}, an integer")
    return values


def _expected(shape: TableShape) -> str:
    if shape.by_rowid:
        return f"the integer {shape.key_names[0]}"
    if len(shape.key_names) == 1:
        return f"a value of {shape.key_names[0]}"
    return "a JSON object with " + ", ".join(shape.key_names)
