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

Prints a Markdown section for benchmarks/REPORT.md; --json keeps the numbers.
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
from run import _covered, s3_url  # noqa: E402
from support.proxy import Proxy, count_waves  # noqa: E402
from support.replicas import child_env  # noqa: E402
from support.seaweed import running_seaweedfs  # noqa: E402

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


def cli_wall(url: str, env: dict[str, str], extra: tuple[str, ...], runs: int, proxy: Proxy) -> dict:
    """Wall clock of whole CLI processes, and the requests (and round trips) of the last one."""
    code = "import sys\nfrom litestream_vfs.cli import main\nsys.exit(main())"
    samples = []
    for _ in range(runs):
        proxy.reset()
        began = time.perf_counter()
        python(code, "query", url, POINT_QUERY, *extra, env=env)
        samples.append((time.perf_counter() - began) * 1000)
    records = proxy.records()
    return {"ms": samples, "requests": len(records), "round_trips": count_waves(records)}


def measure(latency_ms: float, runs: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="litestream-vfs-startup-"))
    with running_seaweedfs(workdir / "seaweedfs") as server:
        chinook = ship_chinook(workdir, server)
        env = child_env(server.credentials_env())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["AWS_EC2_METADATA_DISABLED"] = "true"  # a laptop without instance metadata
        references = {name: timed(body, env, runs) for name, body in REFERENCES.items()}
        tree = import_tree(env)
        with Proxy(server.endpoint_url, latency=latency_ms / 1000) as proxy:
            url = s3_url(server, proxy, chinook.key_prefix)
            opens = [open_and_query(url, env, proxy) for _ in range(runs)]
            cli = {"latest": cli_wall(url, env, (), runs, proxy),
                   f"--time '{RELATIVE_TIME}'": cli_wall(url, env, ("--time", RELATIVE_TIME), runs, proxy)}
    return {"latency_ms": latency_ms, "runs": runs, "references": references, "import_tree": tree,
            "open_and_query": opens, "cli": cli}


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples):,.0f} (min {min(samples):,.0f})"


def report(result: dict) -> str:
    lines = [f"Fresh interpreter per sample, {result['runs']} samples, median (min) in ms; "
             f"{result['latency_ms']:g} ms added to each request.", "",
             "| step | ms |", "|---|---|"]
    lines += [f"| {name} | {_ms(samples)} |" for name, samples in result["references"].items()]
    opens = result["open_and_query"]
    best = min(opens, key=lambda o: o["open_ms"] + o["query_ms"])
    steps = {"import_ms": "one process: `import litestream_vfs`", "open_ms": "… then `connect(URL)`",
             "query_ms": f"… then `{POINT_QUERY}`", "wall_ms": "… the whole process, wall clock"}
    lines += [f"| {label} | {_ms([o[key] for o in opens])} |" for key, label in steps.items()]
    for name, run in result["cli"].items():
        lines.append(f"| CLI process `litestream-vfs query URL SQL` {name} ({run['requests']} requests, "
                     f"{run['round_trips']} round trips) | {_ms(run['ms'])} |")
    open_query = [o["open_ms"] + o["query_ms"] for o in opens]
    network = [o["network_ms"] for o in opens]
    lines += ["", f"Open + first query: {statistics.median(open_query):,.0f} ms for "
              f"{best['round_trips']} round trips / {best['requests']} requests, "
              f"{statistics.median(network):,.0f} ms on the network = "
              f"{statistics.median(open_query) / statistics.median(network):.1f}× the network time. "
              f"Heavy modules loaded by then: {', '.join(best['heavy_modules']) or 'none'}.",
              "", "Slowest imports under `import litestream_vfs` (`-X importtime`, one run):", "",
              "| module | self ms | cumulative ms |", "|---|---|---|"]
    lines += [f"| `{name}` | {own:.1f} | {total:.1f} |" for name, own, total in result["import_tree"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    result = measure(args.latency_ms, args.runs)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(report(result))


if __name__ == "__main__":
    main()
