"""SQL views of what changed: `litestream_log` and `litestream_diff`, per connection.

- ``litestream_log`` (table-valued; optional arguments: table name or NULL,
  schema default ``main``): txid, time, level, min_txid, name, pages — one row
  per (state, b-tree) its changes touched, oldest first.
- ``litestream_diff(table, from, to[, schema])``: change, key, before, after —
  one row per row added/removed/changed between two states (TXIDs or times);
  key/before/after are JSON objects (BLOBs as hex), before/after NULL when absent.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Iterator

import apsw
import apsw.ext

from .timeparse import format_time, format_txid
from .vfs import file_of


def to_json(value: dict[str, Any] | None) -> str | None:
    """A row as JSON text, BLOBs as hex (the same form the CLI prints)."""
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
    litestream_log.column_access = apsw.ext.VTColumnAccess.By_Index
    return litestream_log


def _diff(connection_ref: weakref.ReferenceType) -> object:
    def litestream_diff(table_name: str, from_state: str, to_state: str, schema: str = "main") -> Iterator[tuple]:
        from .rowdiff import diff

        url = file_of(connection_ref(), schema).replica.source_url
        for row in diff(url, table_name, from_state, to_state):
            yield (row["change"], to_json(row["key"]), to_json(row["before"]), to_json(row["after"]))

    litestream_diff.columns = ("change", "key", "before", "after")
    litestream_diff.column_access = apsw.ext.VTColumnAccess.By_Index
    return litestream_diff


def install_changes(connection: apsw.Connection) -> None:
    """Add `litestream_log` and `litestream_diff` to a connection (called from `sql.install`)."""
    ref = weakref.ref(connection)
    apsw.ext.make_virtual_module(connection, "litestream_log", _log(ref), eponymous=True)
    apsw.ext.make_virtual_module(connection, "litestream_diff", _diff(ref), eponymous=True)
