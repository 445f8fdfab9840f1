"""What is measured: each scenario is a dataset, the engines to compare and the steps a child runs.

A step is a dict the child understands (see child.py): op open/query/sleep/
close, a connection number and a phase name. The phase names below are what
the report reads: `open`, `cold` (first query, cold process), `warm` (same
query again on the same connection, best of several), `conn2_open`/`conn2`
(a second connection in the same process), `jump` (after a time-travel
PRAGMA) and `idle` (a connection following latest, doing nothing).

Hydration (`events_hydrate`, our VFS only) prefixes a query group with its
moment: `cold*` while the local copy builds, `hydrate_wait` until
`PRAGMA litestream_hydration` says ready, `hydrated*` after that, and
`restart*` in a new process that opens the same copy (`new_process` splits
the steps into one child process each; run.py gives them one hydrate path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datasets import EVENTS_PER_USER, Dataset

#: Engines in report order. `restore` = `litestream restore` then a local query.
ENGINES = ("ours", "go", "restore", "local")
REMOTE_ENGINES = ("ours", "go")
POLL_IDLE_SECONDS = 5.0
EMPTY_TIMEOUT = 4.0
HYDRATE_WAIT_SECONDS = 240.0

Step = dict


@dataclass(frozen=True)
class Scenario:
    """One measured workload; `steps(dataset)` gives the child's script."""

    name: str
    title: str
    dataset: str  # "chinook" | "events" | "empty"
    steps: Callable[[Dataset], list[Step]]
    engines: tuple[str, ...] = ENGINES
    #: Seconds before a child is killed; the Go VFS on a full scan needs a cap.
    timeout: float = 300.0
    #: A cap for the Go VFS; its second connection (which repeats every request,
    #: as the cheaper scenarios show) is then skipped to keep the run short.
    go_timeout: float | None = None

    def steps_for(self, engine: str, dataset: Dataset) -> list[Step]:
        steps = self.steps(dataset)
        if engine == "go" and self.go_timeout:
            steps = [s for s in steps if not s["phase"].startswith("conn2")]
        return steps


def _open(phase: str, conn: int = 0, time: str | None = None, hydrate: bool = False) -> Step:
    return {"op": "open", "phase": phase, "conn": conn, **({"time": time} if time else {}),
            **({"hydrate": True} if hydrate else {})}


def _query(phase: str, sql: str, conn: int = 0, repeat: int = 1) -> Step:
    return {"op": "query", "phase": phase, "conn": conn, "sql": sql, "repeat": repeat}


def cold_warm(sql: Callable[[Dataset], str], warm_repeat: int = 5) -> Callable[[Dataset], list[Step]]:
    """Open, query cold, query again warm, then the same on a second connection."""
    def steps(dataset: Dataset) -> list[Step]:
        text = sql(dataset)
        return [_open("open"), _query("cold", text), _query("warm", text, repeat=warm_repeat),
                _open("conn2_open", conn=1), _query("conn2", text, conn=1)]
    return steps


def _middle_user(dataset: Dataset) -> int:
    return dataset.rows // EVENTS_PER_USER // 2


def _events_point(dataset: Dataset) -> str:
    return f"SELECT id, created FROM events WHERE user_id = {_middle_user(dataset)}"


CHINOOK_JOIN = ("SELECT g.Name, round(sum(il.UnitPrice * il.Quantity), 2) AS revenue"
                " FROM InvoiceLine il JOIN Track t ON t.TrackId = il.TrackId"
                " JOIN Genre g ON g.GenreId = t.GenreId GROUP BY g.GenreId ORDER BY revenue DESC")
EVENTS_COUNT = "SELECT count(*) FROM events"
EVENTS_SCAN = "SELECT count(*) FROM events WHERE payload LIKE '%ABCDEF%'"
CHINOOK_PRICES = ("SELECT GenreId, round(sum(UnitPrice), 2) FROM Track"
                  " GROUP BY GenreId ORDER BY GenreId")


def _time_jump(dataset: Dataset) -> list[Step]:
    return [_open("open"), _query("cold", CHINOOK_PRICES),
            _query("set_time", f"PRAGMA litestream_time = '{dataset.older_time}'"),
            _query("jump", CHINOOK_PRICES)]


def _polling(dataset: Dataset) -> list[Step]:
    probe = "SELECT count(*) FROM Genre"
    return [_open("open"), _query("cold", probe), _open("conn2_open", conn=1),
            _query("conn2", probe, conn=1),
            {"op": "sleep", "phase": "idle", "seconds": POLL_IDLE_SECONDS}]


def hydration_steps(point: str, count: str, scan: str) -> list[Step]:
    """Cold open with `hydrate=`, wait for the copy, query it, then reopen it in a new process.

    The full scan is left out while the copy builds (it would fetch the database
    twice); after that it shows the copy serves pages no query has fetched.
    """
    queries = {"": point, "_count": count, "_scan": scan}
    return [_open("open", hydrate=True), _query("cold", point), _query("cold_count", count),
            {"op": "wait_hydrated", "phase": "hydrate_wait", "conn": 0,
             "timeout": HYDRATE_WAIT_SECONDS},
            *(_query(f"hydrated{suffix}", sql) for suffix, sql in queries.items()),
            {"op": "new_process", "phase": "restart_load"},
            _open("restart_open", hydrate=True),
            *(_query(f"restart{suffix}", sql) for suffix, sql in queries.items())]


def _events_hydrate(dataset: Dataset) -> list[Step]:
    return hydration_steps(_events_point(dataset), EVENTS_COUNT, EVENTS_SCAN)


def _empty(dataset: Dataset) -> list[Step]:
    return [_open("open"), _query("cold", "SELECT count(*) FROM sqlite_master")]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("chinook_pk", "Chinook: cold open + point lookup by primary key", "chinook",
             cold_warm(lambda d: "SELECT Name, Composer, UnitPrice FROM Track WHERE TrackId = 2000")),
    Scenario("chinook_join", "Chinook: revenue per genre (InvoiceLine ⋈ Track ⋈ Genre)",
             "chinook", cold_warm(lambda d: CHINOOK_JOIN)),
    Scenario("chinook_time", "Chinook: PRAGMA litestream_time jump to the older state",
             "chinook", _time_jump, engines=REMOTE_ENGINES),
    Scenario("events_point", "events: point lookup via the user_id index", "events",
             cold_warm(_events_point)),
    Scenario("events_range", "events: 1,000-row range scan via the user_id index", "events",
             cold_warm(lambda d: "SELECT id, user_id, created FROM events WHERE user_id BETWEEN "
                                 f"{_middle_user(d)} AND {_middle_user(d) + 1000 // EVENTS_PER_USER - 1}")),
    Scenario("events_count", "events: full count(*)", "events",
             cold_warm(lambda d: EVENTS_COUNT, warm_repeat=3), go_timeout=150.0),
    Scenario("events_scan", "events: full table scan, predicate on an unindexed column", "events",
             cold_warm(lambda d: EVENTS_SCAN, warm_repeat=2), go_timeout=60.0),
    Scenario("events_hydrate", "events: hydration (hydrate=PATH), before and after the copy "
             "is ready, and after a restart", "events", _events_hydrate, engines=("ours",)),
    Scenario("polling", f"background polling: 2 connections following latest, idle "
             f"{POLL_IDLE_SECONDS:g} s", "chinook", _polling, engines=REMOTE_ENGINES),
    Scenario("empty_replica", "opening an empty replica (no LTX files)", "empty", _empty,
             engines=REMOTE_ENGINES, timeout=EMPTY_TIMEOUT),
)


def by_name(names: list[str] | None) -> tuple[Scenario, ...]:
    """The scenarios named (all when None), in the canonical order; unknown names fail."""
    if not names:
        return SCENARIOS
    known = {s.name for s in SCENARIOS}
    unknown = sorted(set(names) - known)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return tuple(s for s in SCENARIOS if s.name in names)
