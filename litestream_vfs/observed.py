"""Run SQL at a state and note every page it read: what the answer depends on.

SQLite's answer to a query is a function of the bytes of the pages it read
(page 1 and the schema, then the b-tree paths it followed, overflow pages).
So while none of those pages is written, the answer stays the same: `blame`
uses that to skip every state that could not have changed a row.

One connection is moved from state to state; moving changes page 1's change
counter, so SQLite drops its page cache and every page a query needs is read
again through the VFS, where this module notes its number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import apsw

from .connect import connect
from .errors import ReplicaError
from .replica import Replica, State
from .timeparse import format_txid
from .vfs import file_of


class _NotingReplica:
    """The shared replica as one connection's file sees it, noting the page numbers asked for."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica
        self.pages: set[int] = set()

    def read_pages(self, state: State, pgnos: Iterable[int], *args: Any, **kwargs: Any) -> dict:
        pgnos = list(pgnos)
        self.pages.update(pgnos)
        return self._replica.read_pages(state, pgnos, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._replica, name)


@dataclass
class Observation:
    """Rows of a query at one state, and every page number the query read there."""

    state: State
    columns: tuple[str, ...]
    rows: list[tuple]
    pages: set[int] = field(default_factory=set)


class ObservedConnection:
    """One connection on a replica, moved to a state per query, noting the pages each query reads."""

    def __init__(self, url: str, first: int) -> None:
        # Always through the replica: a local hydrated copy would hide the pages read.
        self.connection = connect(url, txid=format_txid(first), params={"hydrate": "off"})
        self.file = file_of(self.connection)
        self._noting = _NotingReplica(self.file.replica)
        self.file.replica = self._noting
        self._at: int | None = None
        #: The pages the last query read: where the next state's query most likely goes too.
        self._last: set[int] = set()

    def move(self, txid: int) -> State:
        """Go to state `txid`, reading there in one batched round the pages the last query read.

        A query at a neighbouring state mostly follows the same b-tree path; read
        together, those pages cost one round trip instead of one per level.
        """
        self.connection.pragma("litestream_txid", format_txid(txid))
        state: State = self.file.state
        if self._at != txid and self._last:
            self._noting._replica.read_pages(state, sorted(p for p in self._last if p <= state.commit),
                                             self.file.charge)
        self._at = txid
        return state

    def run(self, txid: int, sql: str, params: Sequence[Any] = ()) -> Observation:
        """The rows of `sql` at state `txid` (one read transaction) and the pages it read."""
        state = self.move(txid)
        self._noting.pages = set()
        try:
            columns, rows = _query(self.connection, sql, params)
        except apsw.SQLError as exc:  # e.g. no such table: say at which state
            raise apsw.SQLError(f"at {state.describe()}: {exc}") from None
        if not self._noting.pages:
            raise ReplicaError("could not observe which pages a query read (none went through the replica)")
        self._last = self._noting.pages | {1}
        return Observation(state, tuple(columns), rows, set(self._last))

    def close(self) -> None:
        self.file.replica = self._noting._replica
        self.connection.close()

    def __enter__(self) -> ObservedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _query(connection: apsw.Connection, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple]]:
    """(column names, rows): names as the rows came (after a schema change SQLite re-prepares
    the statement, so names noted before the first step can be stale)."""
    names: list[str] = []

    def note(cursor: apsw.Cursor, row: tuple) -> tuple:
        if not names:
            names.extend(d[0] for d in cursor.getdescription())
        return row

    cursor = connection.cursor()
    cursor.row_trace = note
    return names, cursor.execute(sql, tuple(params)).fetchall()
