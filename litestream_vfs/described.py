"""An APSW cursor that knows its columns even when a statement returns no rows.

APSW describes a statement only while it is running; once an empty result has
finished there is nothing left to ask. The execution tracer runs as each
statement starts, before it steps, so that is where the columns are noted.
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
        cursor.exec_trace = self._note

    def _note(self, cursor: apsw.Cursor, statement: str, bindings: Any) -> bool:
        self.columns = tuple((name, declared) for name, declared, *_ in cursor.description)
        if self._on_start:
            self._on_start(self.names)
        return True

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]
