"""`bisect`: the first state whose answer to a query differs from the answer at the start.

Binary search over the restorable states between two bounds, assuming the
answer changes once (like `git bisect`): the query runs at the first and the
last state, then at ceil(log2(states - 1)) states at most, each one read
transaction on one connection moved in time. Answers are compared as ordered
lists of rows, so a query should ORDER BY what it returns.

Between queries the LTX page indexes (`page_watch`) move the lower bound up to
the first state whose files wrote a page the query read there: before it the
answer cannot have changed. Each query still halves what is left at least,
and a query that reads few pages (a lookup, a count over an index range) is
often placed right at its change point this way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from .connect import open_replica
from .observed import Observation, ObservedConnection
from .page_watch import PageWatch
from .state_range import states_between
from .timeparse import format_time, format_txid

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class ChangePoint:
    """Where the answer changed: `txid`/`time` of the first differing state (None: no change),
    the rows at the state before it and at it, and how many states were queried."""

    txid: int | None
    time: datetime | None
    before: Rows
    after: Rows | None
    evaluated: int

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON form (BLOBs as hex)."""
        return {"txid": None if self.txid is None else format_txid(self.txid),
                "time": None if self.time is None else format_time(self.time),
                "before": _jsonable(self.before), "after": None if self.after is None else _jsonable(self.after),
                "evaluated": self.evaluated}


def _jsonable(rows: Rows) -> Rows:
    return [{k: v.hex() if isinstance(v, bytes) else v for k, v in row.items()} for row in rows]


def _rows(seen: Observation) -> Rows:
    return [dict(zip(seen.columns, row)) for row in seen.rows]


def _halvings(count: int) -> int:
    """Queries a binary search needs to split `count` states (the ends known) down to two."""
    return math.ceil(math.log2(count - 1)) if count > 2 else 0


def bisect(url: str, sql: str, *, since: str | int | None = None, until: str | int | None = None,
           params: Sequence[Any] = ()) -> ChangePoint:
    """The first state after `since` (default: earliest) up to `until` (default: latest)
    whose rows for `sql` differ from those at `since`."""
    replica = open_replica(url)
    states = states_between(replica, since, until)
    watch = PageWatch(replica, states)
    with ObservedConnection(url, states[0]) as connection:
        evaluated = 0

        def at(index: int) -> Observation:
            nonlocal evaluated
            evaluated += 1
            return connection.run(states[index], sql, params)

        low = first = at(0)
        if len(states) == 1 or (high := at(len(states) - 1)).rows == first.rows:
            return ChangePoint(None, None, _rows(first), None, evaluated)
        lo, hi = 0, len(states) - 1  # the answer at lo is the first one, at hi it is not
        budget = _halvings(len(states))  # queries left; always >= _halvings(hi - lo + 1)
        while hi - lo > 1:
            # Nothing the query read at lo is written before `touch`: the answer holds until then.
            touch = watch.next_touch(lo, low.state, low.pages)
            if touch is None or touch.index >= hi:
                break
            lo = touch.index - 1
            # Query right at the touch if what could remain after it still fits the budget.
            mid = touch.index if 1 + _halvings(hi - touch.index + 1) <= budget else (lo + hi + 1) // 2
            budget -= 1
            seen = at(mid)
            if seen.rows == first.rows:
                lo, low = mid, seen
            else:
                hi, high = mid, seen
        return ChangePoint(high.state.txid, high.state.timestamp, _rows(low), _rows(high), evaluated)
