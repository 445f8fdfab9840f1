"""Benchmark for issue 16: blame, bisect and a small diff on the ~100 MB events table, each
against the naive way, through a proxy adding 20 ms per request.

    python benchmarks/investigate.py [--states 120] [--latency-ms 20] [--events-mb 100]
                                     [--verify auto|full|ranges ...] [--results-dir DIR] [--report REPORT.md]

The events database (benchmarks/datasets.py) is shipped to SeaweedFS by the real
`litestream replicate` (L1/L2 compaction on) while --states small transactions
commit one at a time: each updates three rows, a known row is updated at a few of
them, one sets a marker a bisect looks for. Every measurement runs cold in its
own child process; the proxy counts its requests. Results go to
benchmarks/results/investigate-<time>.json and the "Issue 16" section of REPORT.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE), str(REPO / "tests")]

import apsw  # noqa: E402

from datasets import LITESTREAM_VERSION, events_source  # noqa: E402
from report import replace_section  # noqa: E402
from support.binaries import litestream_binary  # noqa: E402
from support.proxy import Proxy, count_waves  # noqa: E402
from support.replicas import ReplicaLocation, child_env, replicate_config, replicate_steps  # noqa: E402
from support.seaweed import SeaweedFS, running_seaweedfs  # noqa: E402
from support.workload import Step  # noqa: E402

SECTION = "## Issue 16: blame, bisect and small diffs on the 100 MB table"
KNOWN_ROW_EVERY = 25  # the known row changes at every 25th transaction
MARKER = "SELECT count(*) FROM events WHERE user_id = -1"
OPERATIONS = ("blame", "blame-naive", "bisect", "bisect-naive", "diff", "diff-naive")


# -- the workload -------------------------------------------------------------------------
def workload(rows: int, states: int, seed: int = 16) -> tuple[list[Step], dict]:
    """Steps of three-row updates; which row is known, where the marker and the 3-row diff are."""
    rng = random.Random(seed)
    known, marked = rows // 2, rows // 3
    marker_step, diff_step = states * 2 // 3, states // 2
    steps = []
    for i in range(1, states + 1):
        ids = [rng.randrange(1, rows + 1) for _ in range(3)]
        statements = [f"UPDATE events SET payload = hex(randomblob(80)) WHERE id IN ({', '.join(map(str, ids))})"]
        if i % KNOWN_ROW_EVERY == 0:
            statements.append(f"UPDATE events SET created = 'step {i}' WHERE id = {known}")
        if i == marker_step:
            statements.append(f"UPDATE events SET user_id = -1 WHERE id = {marked}")
        steps.append(Step(f"step {i}", _run(statements)))
    return steps, {"known": known, "marker_step": marker_step, "diff_step": diff_step}


def _run(statements: list[str]):  # noqa: ANN202 - a Step callable
    def apply(conn: apsw.Connection) -> None:
        with conn:
            for statement in statements:
                conn.execute(statement)
    return apply


def ship(workdir: Path, server: SeaweedFS, megabytes: int, states: int) -> tuple[str, dict]:
    """Replicate the events database while the steps commit; (key prefix, facts)."""
    source, rows = events_source(megabytes)
    db = workdir / "events.db"
    shutil.copyfile(source, db)
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA journal_mode=wal")
    conn.close()
    prefix = "bench/investigate.db"
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db, server.s3_url(prefix)))
    steps, facts = workload(rows, states)
    newest = ReplicaLocation("s3", prefix, server).newest_txid
    landed = replicate_steps(litestream_binary(LITESTREAM_VERSION), config, server.credentials_env(), newest, db,
                             steps, prefix, compacted_levels=(1, 2))
    txids = dict(landed)
    facts.update(rows=rows, megabytes=round(db.stat().st_size / 1e6, 1),
                 diff_from=txids[f"step {facts['diff_step'] - 1}"], diff_to=txids[f"step {facts['diff_step']}"],
                 marker_txid=txids[f"step {facts['marker_step']}"])
    return prefix, facts


# -- one measurement, in a child process ---------------------------------------------------
def child(operation: str, url: str, facts: dict, verify: str) -> dict:
    """Run one operation cold under `verify` (verify.py); return its result summary and seconds."""
    import litestream_vfs

    litestream_vfs.register(verify=verify)
    from litestream_vfs.connect import connect, open_replica
    from litestream_vfs.rowdiff import merge, rows_in
    from litestream_vfs.tablekey import table_shape
    from litestream_vfs.timeparse import format_txid

    began = time.perf_counter()
    states = open_replica(url).chains_for().states
    if operation == "blame":
        versions = litestream_vfs.blame(url, "events", facts["known"])
        result = {"states": len(states), "versions": [(format_txid(v.txid), v.change) for v in versions]}
    elif operation == "blame-naive":  # open every state, read the row
        versions, last = [], None
        for txid in states:
            conn = connect(url, txid=format_txid(txid))
            row = conn.execute("SELECT * FROM events WHERE id = ?", (facts["known"],)).fetchall()
            conn.close()
            if row != last:
                versions.append((format_txid(txid), "present" if last is None else "updated"))
            last = row
        result = {"states": len(states), "versions": versions}
    elif operation == "bisect":
        found = litestream_vfs.bisect(url, MARKER)
        result = {"txid": format_txid(found.txid or 0), "evaluated": found.evaluated}
    elif operation == "bisect-naive":  # every state in turn until the answer changes
        conn = connect(url, txid=format_txid(states[0]))
        first, evaluated, changed = conn.execute(MARKER).fetchall(), 1, 0
        for txid in states[1:]:
            conn.pragma("litestream_txid", format_txid(txid))
            evaluated += 1
            if conn.execute(MARKER).fetchall() != first:
                changed = txid
                break
        result = {"txid": format_txid(changed), "evaluated": evaluated}
    elif operation == "diff":
        result = {"rows": len(list(litestream_vfs.diff(url, "events", facts["diff_from"], facts["diff_to"])))}
    elif operation == "diff-naive":  # scan both states, merge-join every row
        conn = connect(url, txid=format_txid(facts["diff_from"]))
        conn.execute("ATTACH ? AS after", (_uri(url, facts["diff_to"]),))
        shape = table_shape(conn, "main", "events")
        assert shape is not None
        every = [(None, None)]
        changes = merge(rows_in(conn, "main", shape, shape, every), rows_in(conn, "after", shape, shape, every),
                        shape.key_names, shape.columns)
        result = {"rows": sum(1 for _ in changes)}
    else:
        raise ValueError(f"unknown operation {operation!r}")
    return {"seconds": round(time.perf_counter() - began, 3), "result": result}


def _uri(url: str, txid: int) -> str:
    from litestream_vfs.connect import replica_uri
    from litestream_vfs.timeparse import format_txid

    return replica_uri(url, txid=format_txid(txid))


def measure(proxy: Proxy, server: SeaweedFS, url: str, operation: str, facts: dict, verify: str) -> dict:
    proxy.reset()
    began = time.monotonic()
    done = subprocess.run([sys.executable, __file__, "--child", operation, "--url", url, "--verify", verify,
                           "--facts", json.dumps(facts)], env=child_env(server.credentials_env()),
                          capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{operation} failed: {done.stderr.strip()[-2000:]}")
    records = [r for r in proxy.records() if r.start >= began]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    kinds = {kind: sum(1 for r in records if r.kind == kind) for kind in ("GET", "LIST")}
    return {**out, "requests": len(records), **kinds, "waves": count_waves(records),
            "bytes": sum(r.response_bytes for r in records)}


# -- the report -----------------------------------------------------------------------------
def report(results: dict) -> str:
    facts, latency = results["facts"], results["latency_ms"]
    rows = []
    for mode, runs in results["runs"].items():
        for ours, naive, what in (
                ("blame", "blame-naive", f"blame of one row over {runs['blame']['result']['states']} states"),
                ("bisect", "bisect-naive", "bisect of a count over the same states"),
                ("diff", "diff-naive", f"diff of 2 neighbouring states ({runs['diff']['result']['rows']} rows)")):
            a, b = runs[ours], runs[naive]
            rows.append(f"| {what} | {mode} | {a['requests']} ({a['GET']} GET) | {a['waves']} | "
                        f"{a['bytes'] / 1e6:.1f} MB | {a['seconds']:.2f} s | {b['requests']} ({b['GET']} GET) | "
                        f"{b['waves']} | {b['bytes'] / 1e6:.1f} MB | {b['seconds']:.2f} s | "
                        f"{b['seconds'] / max(a['seconds'], 1e-9):.1f}x |")
    runs = next(iter(results["runs"].values()))
    return "\n".join([
        SECTION, "",
        f"Measured by `python benchmarks/investigate.py` ({results['started']}; {latency:g} ms per request "
        f"through the proxy, SeaweedFS, Litestream {LITESTREAM_VERSION} with L1/L2 compaction). The events table "
        f"({facts['rows']} rows, {facts['megabytes']} MB) then {facts['states']} transactions of three-row "
        f"updates; the known row changes every {KNOWN_ROW_EVERY}th, a marker row at transaction "
        f"{facts['marker_step']}. Each run is cold, in its own process. Naive: blame opens every state "
        "and reads the row; bisect queries every state in turn until the answer changes; diff scans the "
        "table in both states and merge-joins every row. `verify`: the package's default `auto` checks "
        "every file's checksum, large ones (the 100 MB snapshot) by a background pass that streams the "
        "whole file, which dominates bytes and adds requests; `ranges` trusts frame checks only, showing "
        "what each way itself reads. Requests include one LIST.", "",
        "| work | verify | ours: requests | waves | bytes | time | naive: requests | waves | bytes | time | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows, "",
        f"Both ways agree: blame finds {len(runs['blame']['result']['versions'])} versions "
        f"(naive: {len(runs['blame-naive']['result']['versions'])}); bisect finds TXID "
        f"{runs['bisect']['result']['txid']} after {runs['bisect']['result']['evaluated']} queries "
        f"(naive: {runs['bisect-naive']['result']['txid']} after {runs['bisect-naive']['result']['evaluated']}).",
        ""])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=120)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--events-mb", type=int, default=100)
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md", help="report whose section to update")
    parser.add_argument("--verify", action="append", choices=("auto", "full", "ranges"),
                        help="verify mode(s) to measure (default: auto and ranges)")
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--facts")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.url, json.loads(args.facts), args.verify[0])))
        return
    began = datetime.now(timezone.utc)
    workdir = Path(tempfile.mkdtemp(prefix="litestream-vfs-investigate-"))
    try:
        with ExitStack() as stack:
            server = stack.enter_context(running_seaweedfs(workdir / "seaweedfs"))
            clock = time.perf_counter()
            prefix, facts = ship(workdir, server, args.events_mb, args.states)
            facts["states"] = args.states
            print(f"shipped {args.states} transactions in {time.perf_counter() - clock:.0f} s", flush=True)
            proxy = stack.enter_context(Proxy(server.endpoint_url, latency=args.latency_ms / 1000))
            url = (f"s3://{server.bucket}/{prefix}?endpoint={proxy.url}&region={server.region}"
                   "&forcePathStyle=true")
            runs: dict[str, dict] = {}
            for mode in args.verify or ["auto", "ranges"]:
                for operation in OPERATIONS:
                    runs.setdefault(mode, {})[operation] = measure(proxy, server, url, operation, facts, mode)
                    print(mode, operation, json.dumps(runs[mode][operation]), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = {"started": began.isoformat(timespec="seconds"), "latency_ms": args.latency_ms,
               "facts": facts, "runs": runs}
    out = args.results_dir / f"investigate-{began.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    replace_section(args.report, SECTION, report(results))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
