"""An APSW cursor that knows its columns even when a statement returns no rows.

APSW describes a statement only while it is running; once an empty result has
finished there is nothing left to ask. The execution tracer runs as each
statement starts, before it steps, so that is where the columns are noted. A
connection whose cached schema is older than the state its transaction reads
re-prepares the statement at its first step (SQLITE_SCHEMA), which can change
the columns: the first row of each statement checks them again. APSW caches
each form of a statement's description separately and does not see the
re-prepare, so the start reads `description` and the first row asks
`get_description()`, which nothing has asked before.
"""

from __future__ import annotations

from typing import Any, Callable

import apsw


class Described:
    """Wraps a fresh APSW cursor; `columns` is (name, declared type) of the statement last started."""

    def __init__(self, cursor: apsw.Cursor, on_start: Callable[[list[str]], None] | None = None) -> None:
        """`on_start`, if given, gets the column names as each statement starts (several in one SQL text)."""
        self.cursor = cursor
        self.columns: tuple[tuple[str, str | None], ...] = ()
        self._on_start = on_start
        self._started: list[str] = []
        cursor.exec_trace = self._note

    def _note(self, cursor: apsw.Cursor, statement: str, bindings: Any) -> bool:
        self.columns = tuple((name, declared) for name, declared, *_ in cursor.description)
        self._started = self.names
        if self._on_start:
            self._on_start(self._started)
        cursor.row_trace = self._first_row
        return True

    def _first_row(self, cursor: apsw.Cursor, row: tuple) -> tuple:
        """Columns as the statement really runs; the names given to `on_start` are corrected in place."""
        cursor.row_trace = None
        columns = tuple(cursor.get_description())
        if columns != self.columns:
            self.columns = columns
            self._started[:] = self.names
        return row

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]
