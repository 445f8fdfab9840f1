"""One cold benchmark run, in its own process so no cache survives between runs.

Usage: python child.py SPEC_JSON. The spec names an engine (`ours`: our VFS;
`go`: Litestream's Go VFS extension, configured from LITESTREAM_REPLICA_URL;
`local`: a plain SQLite file), a target and a list of steps. For every step
the child appends two JSON lines to the spec's output file: a "begin" line
and a result line with time.monotonic() bounds. CLOCK_MONOTONIC is shared by
every process on the machine, so the parent can attribute each request the
proxy logged to the step that was running, and a child killed at a timeout
still leaves every finished step (and the start of the unfinished one) behind.

Hydration (engine `ours`): an `open` step with `"hydrate": true` asks for a
local copy at the spec's `hydrate` path; a `wait_hydrated` step polls
`PRAGMA litestream_hydration` until the copy is ready. Steps on such a
connection record the PRAGMA's answer and the hydrator's own request counters
at their end, so a report can show whether a query ran while the copy was
still building and what building it cost.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from typing import Any
from urllib.parse import quote

import apsw

_SAMPLE_ROWS = 3
#: Seconds between looks at `PRAGMA litestream_hydration` while waiting for the copy.
_HYDRATION_POLL_SECONDS = 0.02


class Engine:
    """Opens read-only connections to the benchmarked database, one way or another."""

    def __init__(self, kind: str, target: str, extension: str | None,
                 hydrate: str | None = None) -> None:
        self.kind = kind
        self.target = target
        self.hydrate = hydrate
        if kind == "go":
            loader = apsw.Connection(":memory:")
            loader.enable_load_extension(True)
            loader.load_extension(extension)
            self._loader = loader  # keep the extension (and its VFS) loaded
        elif kind == "ours":
            import litestream_vfs  # noqa: F401 - registers the VFS

    def open(self, time_text: str | None, hydrate: bool = False, verify: str | None = None) -> apsw.Connection:
        flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        if hydrate and (self.kind != "ours" or not self.hydrate):
            raise ValueError(f"hydration needs engine 'ours' and a hydrate path, not {self.kind!r}")
        if self.kind == "ours":
            from litestream_vfs.connect import connect, replica_uri

            if hydrate:
                uri = f"{replica_uri(self.target, time=time_text)}&hydrate={quote(self.hydrate, safe='')}"
                return apsw.Connection(uri, flags=flags)
            return connect(self.target, time=time_text, params={"verify": verify} if verify else None)
        if self.kind == "go":
            return apsw.Connection("file:db.sqlite?vfs=litestream", flags=flags)
        return apsw.Connection(self.target, flags=apsw.SQLITE_OPEN_READONLY)

    def stats(self) -> dict[str, float] | None:
        """Our VFS's own counters (None for the other engines)."""
        if self.kind != "ours":
            return None
        import litestream_vfs

        return litestream_vfs.stats()


def hydration(conn: apsw.Connection) -> str:
    """`PRAGMA litestream_hydration`: `building 42%`, `ready <txid>`, ..."""
    return str(conn.execute("PRAGMA litestream_hydration").fetchall()[0][0])


def hydration_state(conn: apsw.Connection) -> dict[str, Any]:
    """The PRAGMA's answer and the hydrator's own request counters (what building cost)."""
    from litestream_vfs import file_of

    hydrator = file_of(conn).hydrator
    return {"hydration": hydration(conn),
            "hydrator": hydrator.counters.snapshot() if hydrator else None}


def wait_hydrated(conn: apsw.Connection, timeout: float) -> dict[str, Any]:
    """Poll until the copy is ready; `statuses` lists every distinct answer seen meanwhile."""
    deadline = time.monotonic() + timeout
    seen = [hydration(conn)]
    while not seen[-1].startswith("ready"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"hydration still {seen[-1]!r} after {timeout:g} s")
        time.sleep(_HYDRATION_POLL_SECONDS)
        now = hydration(conn)
        if now != seen[-1]:
            seen.append(now)
    return {"statuses": seen}


def _digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def run_step(engine: Engine, conns: dict[int, apsw.Connection], step: dict) -> dict:
    """Execute one step; the result carries timings, a digest of the rows, or the error."""
    op, conn_id = step["op"], step.get("conn", 0)
    result: dict[str, Any] = {}
    if op == "open":
        if "whole_file_limit" in step:  # a benchmark variant: the limit of an earlier release
            from litestream_vfs import replica

            replica.WHOLE_FILE_LIMIT = step["whole_file_limit"]
        conns[conn_id] = engine.open(step.get("time"), step.get("hydrate", False), step.get("verify"))
    elif op == "query":
        timings, rows = [], []
        for _ in range(step.get("repeat", 1)):
            started = time.perf_counter()
            rows = list(conns[conn_id].execute(step["sql"]))
            timings.append(time.perf_counter() - started)
        result.update(all_seconds=timings, row_count=len(rows), digest=_digest(rows),
                      sample=[[_jsonable(v) for v in row] for row in rows[:_SAMPLE_ROWS]])
    elif op == "wait_hydrated":
        result.update(wait_hydrated(conns[conn_id], step["timeout"]))
    elif op == "wait_verified":
        from litestream_vfs.process import PROCESS

        if not PROCESS.verifier.wait_idle(step.get("timeout", 600)):
            raise TimeoutError("background verification still running")
    elif op == "sleep":
        time.sleep(step["seconds"])
    elif op == "close":
        conns.pop(conn_id).close()
    else:
        raise ValueError(f"unknown step op {op!r}")
    return result


def main(spec: dict) -> None:
    with open(spec["output"], "a", buffering=1) as out:
        def emit(record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

        started = time.monotonic()
        engine = Engine(spec["engine"], spec["target"], spec.get("extension"), spec.get("hydrate"))
        emit({"phase": spec.get("load_phase", "load"), "start": started, "end": time.monotonic(),
              "seconds": time.monotonic() - started})
        conns: dict[int, apsw.Connection] = {}
        hydrating: set[int] = set()
        for step in spec["steps"]:
            emit({"begin": step["phase"], "start": time.monotonic()})
            started, perf = time.monotonic(), time.perf_counter()
            try:
                record = run_step(engine, conns, step)
                if step.get("hydrate"):
                    hydrating.add(step.get("conn", 0))
                if step.get("conn", 0) in hydrating and step["op"] != "close":
                    record.update(hydration_state(conns[step.get("conn", 0)]))
            except Exception as exc:  # noqa: BLE001 - the error is the measurement
                record = {"error": f"{type(exc).__name__}: {exc}"}
            seconds = time.perf_counter() - perf
            record.update(phase=step["phase"], start=started, end=time.monotonic(),
                          seconds=min(record.get("all_seconds") or [seconds]),
                          stats=engine.stats())
            emit(record)
        for conn in conns.values():
            conn.close()


if __name__ == "__main__":
    # os._exit: the Go runtime can crash the interpreter's normal shutdown.
    try:
        main(json.loads(sys.argv[1]))
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)
