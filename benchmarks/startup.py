"""Start-up profile: what a short-lived process pays before its first row.

    python benchmarks/startup.py [--latency-ms 20] [--runs 5] [--json PATH]

Every measurement is a fresh interpreter (no warm module or page cache in
the process; the OS file cache is warm, as on a laptop running a second
command). Against SeaweedFS behind the latency proxy, with Chinook shipped by
the real `litestream replicate`, it measures:

- the interpreter alone, `import litestream_vfs`, and the heaviest entries of
  its import tree (`python -X importtime`);
- reference costs of what an open may pull in: boto3 (import, S3 client),
  dateparser;
- in one process: import, `connect()` + the first point query, with the
  proxy's round trips and time on the network for the open and query;
- the whole CLI process, `litestream-vfs query URL SQL`, wall clock, latest
  and with a relative `--time` (seconds ago: the replica is fresh).

Also warm queries against local APSW in one process. Writes
benchmarks/results/startup-<time>.json and replaces the "Issue 19: Cold start"
section of benchmarks/REPORT.md (measured tables, then startup_notes.md);
--before compares with an earlier results file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests")]

from datasets import ship_chinook  # noqa: E402
from report import replace_section  # noqa: E402
from run import _covered, s3_url  # noqa: E402
from support.proxy import Proxy, count_waves  # noqa: E402
from support.replicas import child_env  # noqa: E402
from support.seaweed import running_seaweedfs  # noqa: E402

SECTION = "## Issue 19: Cold start"
#: Written by hand, kept under the measured tables: what was done and why (see REPORT.md).
NOTES_FILE = HERE / "startup_notes.md"
POINT_QUERY = "SELECT Name FROM Track WHERE TrackId = 1"
#: Same form as "5 minutes ago", but the replica was shipped seconds before the run.
RELATIVE_TIME = "3 seconds ago"
#: `python -c` bodies; each prints one JSON object.
_TIMED = "import json, time\nt = time.perf_counter()\n{body}\nprint(json.dumps({{'ms': (time.perf_counter() - t) * 1000}}))"
REFERENCES = {
    "interpreter (python -c pass)": "pass",
    "import litestream_vfs": "import litestream_vfs",
    "import boto3": "import boto3",
    "boto3 S3 client (import + construct)": ("import boto3\nboto3.session.Session().client("
                                             "'s3', region_name='us-east-1')"),
    "import dateparser": "import dateparser",
    "import apsw.ext": "import apsw.ext",
}
_OPEN_AND_QUERY = """
import json, sys, time
marks = {"start": time.monotonic()}
import litestream_vfs
marks["imported"] = time.monotonic()
conn = litestream_vfs.connect(sys.argv[1])
marks["opened"] = time.monotonic()
rows = conn.execute(sys.argv[2]).fetchall()
marks["queried"] = time.monotonic()
print(json.dumps({"marks": marks, "rows": rows, "modules": sorted(sys.modules)}))
"""


_WARM = """
import json, sys, time
import apsw, litestream_vfs

def best_us(conns, sql, repeat):
    # Rounds alternate between the connections, so both meet the same load on a shared machine.
    best = [float("inf")] * len(conns)
    for conn in conns:
        conn.execute(sql).fetchall()
    for _ in range(9):
        for i, conn in enumerate(conns):
            began = time.perf_counter()
            for _ in range(repeat):
                conn.execute(sql).fetchall()
            best[i] = min(best[i], (time.perf_counter() - began) / repeat * 1e6)
    return best

ours = litestream_vfs.connect(sys.argv[1])
local = apsw.Connection(sys.argv[2], flags=apsw.SQLITE_OPEN_READONLY)
out = {"point": best_us((ours, local), sys.argv[3], 2000)}
for conn in (ours, local):  # a scan that does not fit SQLite's own cache: every page comes from the VFS
    conn.execute("PRAGMA cache_size = 5")
out["scan"] = best_us((ours, local), sys.argv[4], 30)
print(json.dumps(out))
"""
#: Reads every page of two tables; with a 5-page SQLite cache, each page again through the VFS.
SCAN_QUERY = "SELECT sum(length(BillingAddress)) FROM Invoice JOIN InvoiceLine USING (InvoiceId)"


def python(code: str, *args: str, env: dict[str, str], flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *flags, "-c", code, *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def timed(body: str, env: dict[str, str], runs: int) -> list[float]:
    """Milliseconds `body` takes in a fresh interpreter (the interpreter's own start
    is measured from outside, as wall clock)."""
    if body == "pass":
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            python("pass", env=env)
            samples.append((time.perf_counter() - began) * 1000)
        return samples
    return [json.loads(python(_TIMED.format(body=body), env=env).stdout)["ms"] for _ in range(runs)]


def import_tree(env: dict[str, str], top: int = 15) -> list[tuple[str, float, float]]:
    """(module, self ms, cumulative ms) for the `top` slowest imports under litestream_vfs."""
    lines = python("import litestream_vfs", env=env, flags=("-X", "importtime")).stderr.splitlines()
    tree = []  # (depth, name, self ms, cumulative ms) in print order: children before parents
    for line in lines:
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        tree.append((depth, name.strip(), int(own) / 1000, int(cumulative) / 1000))
    end = max(i for i, row in enumerate(tree) if row[:2] == (0, "litestream_vfs"))
    start = end
    while start > 0 and tree[start - 1][0] > 0:
        start -= 1
    subtree = [(name, own, total) for _, name, own, total in tree[start:end + 1]]
    return sorted(subtree, key=lambda row: -row[2])[:top]


def open_and_query(url: str, env: dict[str, str], proxy: Proxy) -> dict:
    proxy.reset()
    began = time.perf_counter()
    out = json.loads(python(_OPEN_AND_QUERY, url, POINT_QUERY, env=env).stdout)
    wall = (time.perf_counter() - began) * 1000
    marks = out["marks"]
    records = [r for r in proxy.records() if marks["imported"] <= r.start < marks["queried"]]
    heavy = [m for m in ("boto3", "botocore", "dateparser", "apsw.ext", "litestream_vfs.changes",
                         "litestream_vfs.hydrate", "litestream_vfs.notebook", "litestream_vfs.shell")
             if m in out["modules"]]
    return {"wall_ms": wall, "import_ms": (marks["imported"] - marks["start"]) * 1000,
            "open_ms": (marks["opened"] - marks["imported"]) * 1000,
            "query_ms": (marks["queried"] - marks["opened"]) * 1000,
            "requests": len(records), "round_trips": count_waves(records),
            "network_ms": _covered(records) * 1000, "rows": out["rows"], "heavy_modules": heavy}


def cli_walls(url: str, env: dict[str, str], variants: dict[str, tuple[str, ...]], runs: int,
              proxy: Proxy) -> dict[str, dict]:
    """Wall clock of whole CLI processes, the variants taking turns (so they meet the same load on a
    shared machine), and the requests (and round trips) of each variant's last run."""
    code = "import sys\nfrom litestream_vfs.cli import main\nsys.exit(main())"
    out: dict[str, dict] = {name: {"ms": []} for name in variants}
    for _ in range(runs):
        for name, extra in variants.items():
            proxy.reset()
            began = time.perf_counter()
            python(code, "query", url, POINT_QUERY, *extra, env=env)
            out[name]["ms"].append((time.perf_counter() - began) * 1000)
            records = proxy.records()
            out[name].update(requests=len(records), round_trips=count_waves(records))
    return out


def measure(latency_ms: float, runs: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="litestream-vfs-startup-"))
    with running_seaweedfs(workdir / "seaweedfs") as server:
        chinook = ship_chinook(workdir, server)
        shipped = time.time()
        env = child_env(server.credentials_env())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["AWS_EC2_METADATA_DISABLED"] = "true"  # a laptop without instance metadata
        references = {name: timed(body, env, runs) for name, body in REFERENCES.items()}
        tree = import_tree(env)
        with Proxy(server.endpoint_url, latency=latency_ms / 1000) as proxy:
            url = s3_url(server, proxy, chinook.key_prefix)
            opens = [open_and_query(url, env, proxy) for _ in range(runs)]
            time.sleep(max(0.0, shipped + 3.5 - time.time()))  # RELATIVE_TIME must find the newest state
            cli = cli_walls(url, env, {"latest": (), f"--time '{RELATIVE_TIME}'": ("--time", RELATIVE_TIME)},
                            runs, proxy)
            warm = json.loads(python(_WARM, url, str(chinook.local_path), POINT_QUERY, SCAN_QUERY,
                                     env=env).stdout)
    return {"latency_ms": latency_ms, "runs": runs, "references": references, "import_tree": tree,
            "open_and_query": opens, "cli": cli, "warm": warm, "commit": _commit()}


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def _best(samples: list[float]) -> float:
    """The least of the samples: on a shared machine other jobs only ever add time."""
    return min(samples)


def _cli(result: dict, name: str) -> list[float]:
    run = result["cli"][name]
    return run["ms"] if isinstance(run, dict) else run  # early runs kept only the times


def summary(result: dict) -> dict[str, float]:
    """The numbers the targets are about: the best sample of each (see `_best`)."""
    opens = result["open_and_query"]
    fastest = min(opens, key=lambda o: o["open_ms"] + o["query_ms"])
    names = list(result["cli"])
    facts = {
        "import litestream_vfs (ms)": _best(result["references"]["import litestream_vfs"]),
        "interpreter alone (ms)": _best(result["references"]["interpreter (python -c pass)"]),
        "in one process: import (ms)": _best([o["import_ms"] for o in opens]),
        "in one process: connect() + first point query (ms)": fastest["open_ms"] + fastest["query_ms"],
        "… of which on the network (ms)": fastest["network_ms"],
        "… round trips / requests": f"{fastest['round_trips']} / {fastest['requests']}",
        "CLI `query` process, latest (ms)": _best(_cli(result, names[0])),
        f"CLI `query` process, `--time '{RELATIVE_TIME}'` (ms)": _best(_cli(result, names[1])),
    }
    facts["open + query ÷ network"] = (facts["in one process: connect() + first point query (ms)"]
                                      / facts["… of which on the network (ms)"])
    facts["relative --time adds (ms)"] = (facts[f"CLI `query` process, `--time '{RELATIVE_TIME}'` (ms)"]
                                          - facts["CLI `query` process, latest (ms)"])
    if "warm" in result:
        for kind in ("point", "scan"):
            ours, local = result["warm"][kind]
            facts[f"warm {kind}: ours ÷ local APSW"] = ours / local
    return facts


def targets(facts: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the issue's start-up targets and its warm-path one."""
    ratio = facts["open + query ÷ network"]
    rows = [
        ("`import litestream_vfs` ≤ 40 ms", f"{facts['import litestream_vfs (ms)']:.0f} ms",
         facts["import litestream_vfs (ms)"] <= 40),
        ("connect + first point query ≤ 3× the network time of its round trips",
         f"{ratio:.2f}× ({facts['in one process: connect() + first point query (ms)']:.0f} ms, "
         f"{facts['… of which on the network (ms)']:.0f} ms on the network, "
         f"{facts['… round trips / requests']} round trips / requests)", ratio <= 3),
        ("`litestream-vfs query s3://…` process ≤ 0.35 s wall", f"{facts['CLI `query` process, latest (ms)']:.0f} ms",
         facts["CLI `query` process, latest (ms)"] <= 350),
        ("a relative `--time` adds ≤ 30 ms", f"{facts['relative --time adds (ms)']:.0f} ms",
         facts["relative --time adds (ms)"] <= 30),
    ]
    if "warm point: ours ÷ local APSW" in facts:
        rows.append(("warm point query ≤ 1.3× local APSW", f"{facts['warm point: ours ÷ local APSW']:.2f}×",
                     facts["warm point: ours ÷ local APSW"] <= 1.3))
    return rows


def _cell(value: float | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"


def report(after: dict, before: dict | None = None) -> str:
    """The "Issue 19: Cold start" section: targets, before/after, the import tree."""
    now, then = summary(after), summary(before) if before else {}
    lines = [f"Measured by `python benchmarks/startup.py --latency-ms {after['latency_ms']:g} --runs {after['runs']}` "
             f"(commit `{after.get('commit', '?')}`" + (f"; before: `{before.get('commit', '?')}`" if before else "")
             + f"): every sample a fresh interpreter, the best of {after['runs']} (the machine is shared: "
             f"other jobs only add time), {after['latency_ms']:g} ms added to each request, Chinook "
             "shipped to SeaweedFS by `litestream replicate`. Warm ratios: best of 9 alternating loops in one process.",
             "", "| measure | before | after |", "|---|---|---|"]
    lines += [f"| {name} | {_cell(then.get(name))} | {_cell(value)} |" for name, value in now.items()]
    lines += ["", "| target (issue 19) | measured | met |", "|---|---|---|"]
    lines += [f"| {name} | {shown} | **{'yes' if ok else 'no'}** |" for name, shown, ok in targets(now)]
    lines += ["", "Reference costs in the same run (ms, median (min)):", "", "| step | before | after |", "|---|---|---|"]
    for name, samples in after["references"].items():
        old = (before or {}).get("references", {}).get(name)
        lines.append(f"| {name} | {_ms(old) if old else '–'} | {_ms(samples)} |")
    lines += ["", "Heaviest imports under `import litestream_vfs` (`-X importtime`, one run, ms):", "",
              "| module | self | cumulative |", "|---|---|---|"]
    lines += [f"| `{name}` | {own:.1f} | {total:.1f} |" for name, own, total in after["import_tree"][:10]]
    if before:
        lines += ["", "Before, the same tree:", "", "| module | self | cumulative |", "|---|---|---|"]
        lines += [f"| `{name}` | {own:.1f} | {total:.1f} |" for name, own, total in before["import_tree"][:10]]
    return "\n".join(lines)


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples):,.0f} ({min(samples):,.0f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="results JSON of an earlier run to compare with")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md",
                        help=f"report whose '{SECTION}' section to replace ('-': print it)")
    parser.add_argument("--from-results", type=Path, help="write the report from this results JSON, no run")
    args = parser.parse_args(argv)
    if args.from_results:
        path = args.from_results
        result = json.loads(path.read_text())
    else:
        result = measure(args.latency_ms, args.runs)
        args.results_dir.mkdir(parents=True, exist_ok=True)
        path = args.results_dir / f"startup-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
        path.write_text(json.dumps(result, indent=1))
    before = json.loads(args.before.read_text()) if args.before else None
    text = report(result, before)
    if str(args.report) == "-":
        print(text)
    else:
        notes = NOTES_FILE.read_text() if NOTES_FILE.is_file() else ""
        replace_section(args.report, SECTION, f"{SECTION}\n\n{text}\n\n{notes}".rstrip("\n") + "\n")
    print(f"results: {path}", flush=True)


if __name__ == "__main__":
    main()
