"""`blame`: every version of one row across the retained history.

The row is read at the first state, noting every page the lookup read (the
b-tree path to the key, its overflow pages, page 1 and the schema). The row
cannot change before one of those pages is written, so the file indexes
(`page_watch`) give the next state worth reading; reading the row there gives
the next set of pages to watch. Only states whose files wrote the leaf the
key lives on (or a page above it) are ever read: a few, not every state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .connect import open_replica
from .errors import ReplicaError
from .observed import Observation, ObservedConnection
from .page_watch import PageWatch
from .state_range import states_between
from .tablekey import Key, key_values, quote, table_shape
from .timeparse import format_time, format_txid

Row = dict[str, Any]


@dataclass(frozen=True)
class RowVersion:
    """One version of the row: at `txid` it became `row` (None: absent).

    `change` is `present` (the row at the first state), `inserted`, `updated`
    or `deleted`. `since` is set when only a compacted file covers the step
    to this state: the change happened at one of the TXIDs `since..txid`.
    """

    txid: int
    time: datetime
    change: str
    row: Row | None
    since: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON form (BLOBs as hex), plus `covers` for a compacted step."""
        out: dict[str, Any] = {"txid": format_txid(self.txid), "time": format_time(self.time),
                               "change": self.change,
                               "row": None if self.row is None else {k: _jsonable(v) for k, v in self.row.items()}}
        if self.since is not None:
            out["covers"] = f"{format_txid(self.since)}..{format_txid(self.txid)}"
        return out


def _jsonable(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


class RowReader(ObservedConnection):
    """Reads one row by key at a state, noting the pages the lookup read."""

    def __init__(self, url: str, first: int, table: str, key: Key, read_at: list[int]) -> None:
        super().__init__(url, first)
        self.table = table
        self.key = key
        self.read_at = read_at
        #: Whether any state read had the table (a schema change is always read, so if none
        #: had it, no state in between did).
        self.found_table = False

    def row_at(self, txid: int) -> tuple[Row | None, Observation]:
        self.read_at.append(txid)
        self.move(txid)
        shape = table_shape(self.connection, "main", self.table)
        if shape is None:  # no table: only the schema can bring it back
            return None, self.run(txid, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (self.table,))
        self.found_table = True
        seen = self.run(txid, f"SELECT * FROM main.{quote(self.table)} WHERE {shape.where()}",
                        key_values(shape, self.key))
        return (dict(zip(seen.columns, seen.rows[0])) if seen.rows else None), seen


class RowHistory:
    """The versions of one row between two states, and what finding them took."""

    def __init__(self, url: str, table: str, key: Key, *, since: str | int | None = None,
                 until: str | int | None = None) -> None:
        self.url, self.table, self.key = url, table, key
        replica = open_replica(url)
        self.states = states_between(replica, since, until)
        self.watch = PageWatch(replica, self.states)
        #: TXIDs of the states at which the row was read (the rest were skipped by their file indexes).
        self.read_at: list[int] = []

    def versions(self) -> list[RowVersion]:
        """Oldest first: `present` at the first state if the row is there, then each change."""
        with RowReader(self.url, self.states[0], self.table, self.key, self.read_at) as reader:
            row, seen = reader.row_at(self.states[0])
            versions = [RowVersion(seen.state.txid, seen.state.timestamp, "present", row)] if row is not None else []
            index = 0
            while (touch := self.watch.next_touch(index, seen.state, seen.pages)) is not None:
                index = touch.index
                now, seen = reader.row_at(self.states[index])
                if now != row:
                    change = "inserted" if row is None else "deleted" if now is None else "updated"
                    versions.append(RowVersion(seen.state.txid, seen.state.timestamp, change, now, touch.since))
                row = now
            if not reader.found_table:
                raise ReplicaError(f"no table {self.table!r} in any state from TXID {format_txid(self.states[0])} "
                                   f"to TXID {format_txid(self.states[-1])}")
        return versions


def blame(url: str, table: str, key: Key, *, since: str | int | None = None,
          until: str | int | None = None) -> list[RowVersion]:
    """Every version of the row of `table` with `key`, oldest first, from `since` to `until`
    (TXIDs or times; default: the whole retained history).

    `key`: the rowid / INTEGER PRIMARY KEY value, a mapping {column: value} for
    another key (or JSON text of one), or the bare value of a one-column key.
    """
    return RowHistory(url, table, key, since=since, until=until).versions()
