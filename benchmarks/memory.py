"""Memory of one process visiting many states of a large replica (issue 14, item 4/9).

    nice -n 10 python benchmarks/memory.py [--megabytes 100] [--states 15] [--cache-mib 8]
                                            [--baseline DIR]

Real Litestream 0.5.17 replicates the ~100 MB `events` database (benchmarks/datasets.py)
to a local directory while `--states` transactions each rewrite rows spread over the
table. A fresh child process then opens the latest state with an 8 MiB page cache,
and visits every state twice (PRAGMA litestream_txid, one range query each), reporting
RSS after the open, at the end and at its peak, and the time to switch states. With
`--baseline DIR` (a checkout of older code) the same child runs on that code too, in
the same run. Writes benchmarks/results/memory-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import apsw, litestream_vfs
url, cache_mib, txids = sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

litestream_vfs.register(cache_size=cache_mib << 20)
before = rss_mb()
began = time.monotonic()
db = apsw.Connection(f"file:events.db?vfs=litestream&replica={url}", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
db.execute("PRAGMA cache_size = -2048")
db.execute("SELECT count(*) FROM events WHERE id < 1000").fetchall()
opened, open_seconds = rss_mb(), time.monotonic() - began
switches = []
for round_ in range(2):
    for n, txid in enumerate(txids):
        began = time.monotonic()
        db.execute(f"PRAGMA litestream_txid = '{txid}'")
        low = 1 + n * 20000
        db.execute("SELECT count(*), sum(length(payload)) FROM events WHERE id BETWEEN ? AND ?", (low, low + 2000)).fetchall()
        switches.append(time.monotonic() - began)
print(json.dumps({"rss_before_mb": round(before, 1), "rss_after_open_mb": round(opened, 1),
                  "rss_end_mb": round(rss_mb(), 1),
                  "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "open_seconds": round(open_seconds, 3),
                  "switch_seconds_median": round(sorted(switches)[len(switches) // 2], 4),
                  "states_visited": len(switches)}))
"""


def build(workdir: Path, megabytes: int, states: int) -> tuple[Path, list[str]]:
    """A local replica of the events database and the TXIDs of its last `states` states."""
    import apsw
    from datasets import events_source
    from support.binaries import litestream_binary
    from support.replicas import ReplicaLocation, replicate_config, replicate_steps
    from support.workload import Step

    source, rows = events_source(megabytes)
    db_path, replica_dir = workdir / "events.db", workdir / "replica"
    shutil.copyfile(source, db_path)
    conn = apsw.Connection(str(db_path))
    conn.execute("PRAGMA journal_mode=wal")
    conn.close()
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, f"file://{replica_dir}"))

    def rewrite(k: int):
        def apply(connection) -> None:
            with connection:
                connection.execute("UPDATE events SET payload = hex(randomblob(80)) WHERE id % 997 = ?", (k,))
        return Step(f"rewrite {k}", apply)

    landed = replicate_steps(litestream_binary("0.5.17"), config, {}, ReplicaLocation("file", str(replica_dir)).newest_txid,
                             db_path, [rewrite(k) for k in range(states)], str(replica_dir), compacted_levels=(1,))
    return replica_dir, [f"{txid:016x}" for _, txid in landed[-states:]]


def measure(code: Path, replica_dir: Path, cache_mib: int, txids: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(code), quote(str(replica_dir), safe=""), str(cache_mib),
                          json.dumps(txids)], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "PYTHONPATH": str(code)})
    if out.returncode != 0:
        raise RuntimeError(f"child on {code} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--states", type=int, default=15)
    parser.add_argument("--cache-mib", type=int, default=8)
    parser.add_argument("--baseline", type=Path, help="a checkout of older code to measure the same way")
    args = parser.parse_args()
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="memory-") as tmp:
        replica_dir, txids = build(Path(tmp), args.megabytes, args.states)
        replica_bytes = sum(p.stat().st_size for p in replica_dir.rglob("*.ltx"))
        runs = {"current": measure(HERE.parent, replica_dir, args.cache_mib, txids)}
        if args.baseline:
            runs["baseline"] = measure(args.baseline.resolve(), replica_dir, args.cache_mib, txids)
    record = {"started": started, "megabytes": args.megabytes, "states": args.states, "cache_mib": args.cache_mib,
              "replica_bytes": replica_bytes, "baseline": str(args.baseline) if args.baseline else None, **runs}
    out = HERE / "results" / f"memory-{started}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
