"""SQL views of what changed: `litestream_log`, `litestream_diff`, `litestream_blame`, per connection.

- ``litestream_log`` (table-valued; optional arguments: table name or NULL,
  schema default ``main``): txid, time, level, min_txid, name, pages — one row
  per (state, b-tree) its changes touched, oldest first.
- ``litestream_diff(table, from, to[, schema])``: change, key, before, after —
  one row per row added/removed/changed between two states (TXIDs or times);
  key/before/after are JSON objects (BLOBs as hex), before/after NULL when absent.
- ``litestream_blame(table, key[, schema])``: txid, time, change, row — every
  version of one row over the whole retained history, oldest first (see
  `row_history`); key as the CLI takes it (a rowid, JSON object, or bare
  value), row a JSON object or NULL when the row is absent.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterator

import apsw

from .tablefunc import table_function
from .timeparse import format_time, format_txid
from .vfs import file_of


def to_json(value: dict[str, Any] | None) -> str | None:
    """A row as JSON text, BLOBs as hex (the same form the CLI prints)."""
    import json  # not at every process's first connection: only when changes are shown

    if value is None:
        return None
    return json.dumps({k: v.hex() if isinstance(v, bytes) else v for k, v in value.items()})


def _log(connection_ref: weakref.ReferenceType) -> object:
    def litestream_log(table_name: str | None = None, schema: str = "main") -> Iterator[tuple]:
        from .changes import change_log  # the change machinery loads on first use

        url = file_of(connection_ref(), schema).replica.source_url
        for change in change_log(url, table=table_name):
            for name, pages in change.tables.items():
                yield (format_txid(change.txid), format_time(change.time), change.level,
                       format_txid(change.min_txid), name, pages)

    litestream_log.columns = ("txid", "time", "level", "min_txid", "name", "pages")
    return litestream_log


def _diff(connection_ref: weakref.ReferenceType) -> object:
    def litestream_diff(table_name: str, from_state: str, to_state: str, schema: str = "main") -> Iterator[tuple]:
        from .rowdiff import diff

        url = file_of(connection_ref(), schema).replica.source_url
        for row in diff(url, table_name, from_state, to_state):
            yield (row["change"], to_json(row["key"]), to_json(row["before"]), to_json(row["after"]))

    litestream_diff.columns = ("change", "key", "before", "after")
    return litestream_diff


def _blame(connection_ref: weakref.ReferenceType) -> object:
    def litestream_blame(table_name: str, key: Any, schema: str = "main") -> Iterator[tuple]:
        from .row_history import blame

        url = file_of(connection_ref(), schema).replica.source_url
        for version in blame(url, table_name, key):
            yield (format_txid(version.txid), format_time(version.time), version.change, to_json(version.row))

    litestream_blame.columns = ("txid", "time", "change", "row")
    return litestream_blame


def install_changes(connection: apsw.Connection) -> None:
    """Add `litestream_log`, `litestream_diff` and `litestream_blame` to a connection (from `sql.install`)."""
    ref = weakref.ref(connection)
    table_function(connection, "litestream_blame", _blame(ref))
    table_function(connection, "litestream_log", _log(ref))
    table_function(connection, "litestream_diff", _diff(ref))
