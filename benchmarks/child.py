"""One cold benchmark run, in its own process so no cache survives between runs.

Usage: python child.py SPEC_JSON. The spec names an engine (`ours`: our VFS;
`go`: Litestream's Go VFS extension, configured from LITESTREAM_REPLICA_URL;
`local`: a plain SQLite file), a target and a list of steps. For every step
the child appends two JSON lines to the spec's output file: a "begin" line
and a result line with time.monotonic() bounds. CLOCK_MONOTONIC is shared by
every process on the machine, so the parent can attribute each request the
proxy logged to the step that was running, and a child killed at a timeout
still leaves every finished step (and the start of the unfinished one) behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from typing import Any

import apsw

_SAMPLE_ROWS = 3


class Engine:
    """Opens read-only connections to the benchmarked database, one way or another."""

    def __init__(self, kind: str, target: str, extension: str | None) -> None:
        self.kind = kind
        self.target = target
        if kind == "go":
            loader = apsw.Connection(":memory:")
            loader.enable_load_extension(True)
            loader.load_extension(extension)
            self._loader = loader  # keep the extension (and its VFS) loaded
        elif kind == "ours":
            import litestream_vfs  # noqa: F401 - registers the VFS

    def open(self, time_text: str | None) -> apsw.Connection:
        flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        if self.kind == "ours":
            from litestream_vfs.connect import connect

            return connect(self.target, time=time_text)
        if self.kind == "go":
            return apsw.Connection("file:db.sqlite?vfs=litestream", flags=flags)
        return apsw.Connection(self.target, flags=apsw.SQLITE_OPEN_READONLY)

    def stats(self) -> dict[str, float] | None:
        """Our VFS's own counters (None for the other engines)."""
        if self.kind != "ours":
            return None
        import litestream_vfs

        return litestream_vfs.stats()


def _digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def run_step(engine: Engine, conns: dict[int, apsw.Connection], step: dict) -> dict:
    """Execute one step; the result carries timings, a digest of the rows, or the error."""
    op, conn_id = step["op"], step.get("conn", 0)
    result: dict[str, Any] = {}
    if op == "open":
        conns[conn_id] = engine.open(step.get("time"))
    elif op == "query":
        timings, rows = [], []
        for _ in range(step.get("repeat", 1)):
            started = time.perf_counter()
            rows = list(conns[conn_id].execute(step["sql"]))
            timings.append(time.perf_counter() - started)
        result.update(all_seconds=timings, row_count=len(rows), digest=_digest(rows),
                      sample=[[_jsonable(v) for v in row] for row in rows[:_SAMPLE_ROWS]])
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
        engine = Engine(spec["engine"], spec["target"], spec.get("extension"))
        emit({"phase": "load", "start": started, "end": time.monotonic(), "seconds": 0.0})
        conns: dict[int, apsw.Connection] = {}
        for step in spec["steps"]:
            emit({"begin": step["phase"], "start": time.monotonic()})
            started, perf = time.monotonic(), time.perf_counter()
            try:
                record = run_step(engine, conns, step)
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
