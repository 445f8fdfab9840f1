"""The live soak of issue 14 for a chosen length, its figures kept as JSON.

    nice -n 10 python benchmarks/soak.py [--minutes 30] [--backend file|s3] [--workdir DIR]
                                         [--snapshots INTERVAL/RETENTION]
    python benchmarks/soak.py --report RESULT.json [RESULT.json ...]

Runs tests/support/soak.py (the same soak as `pytest -m slow tests/test_soak_live.py`)
and writes benchmarks/results/soak-<UTC time>.json: every figure, the pass
criteria that failed (none when it passed), the RSS curve, the commit measured
and the newest `main` commit it contains.
Exit status 0 when the soak passed. `--report` writes the "Soak (issue 14)" section
of REPORT.md from result files, one column per run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

from support.replicas import HOURLY_SNAPSHOTS, Snapshots  # noqa: E402 - after the path above


def commit() -> str:
    """The checked-out commit (with '+dirty' when the tree has uncommitted changes)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True, text=True,
                              check=False).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def main_commit() -> str:
    """The newest commit of `main` that the checked-out code contains."""
    return subprocess.run(["git", "-C", str(HERE.parent), "merge-base", "HEAD", "main"], capture_output=True,
                          text=True, check=False).stdout.strip()[:7]


SECTION = "## Soak (issue 14)"
SETUP = """\
`nice -n 10 python benchmarks/soak.py --minutes 30` (tests/support/soak.py; the same soak runs for \
3 minutes under `pytest -m slow tests/test_soak_live.py`). Real Litestream 0.5.17 replicates a \
WAL-mode Chinook copy to a directory while a writer thread commits about 5 transactions a second \
(45 s bursts at 6/s, then 12 s pauses; inserts, updates, trims, a 200-row blob block every 300 \
transactions), with L1 compaction every 10 s and L0 files deleted 30 s after compaction \
(`l0-retention: 30s`, `l0-retention-check-interval: 5s`). A separate reader process (so its RSS is \
the VFS's; 2 MiB page cache, so pages keep being evicted and fetched again) runs three connections: \
a **follower** at `latest` querying continuously; a **holder** that pins the last state before a \
writer pause (an L1 file ends there) and re-reads every page of four tables every 3 s for 70 s, \
SQLite's cache dropped each time, past the deletion of the L0 files its first plan used; a \
**traveller** that jumps every 0.5 s by TXID (any restorable state, also one newer than the process listed; old L1 ends \
included), by time (`PRAGMA litestream_time` of a state seen) or to `latest`. Sampled (TXID, answer) \
pairs are compared with `litestream restore -txid` of a hard-link copy of every LTX file the replica \
ever held, so retention cannot race the truth. A clean error for a state retention really removed \
(checked against a fresh listing) is counted apart, not as an error; for a time, the state it was \
resolved to may be removed while a transaction reads it: that counts as removed only if the next \
transaction of the connection reads the state at that time now (sampled like any answer). Snapshots \
are hourly and kept 24 h, unless `--snapshots 5m/10m` (a snapshot every 5 \
minutes, 10 minutes of history kept, so retention also deletes old L1 files and snapshots). Pass: \
no error, every sampled answer equal to the restore, reader RSS at the end within 10 % of RSS at \
minute 5."""
RSS_MINUTES = (1, 5, 10, 15, 20, 25, 30)


def markdown(records: list[dict]) -> str:
    """The report section: the figures of each run side by side, then the RSS curve."""
    def row(name: str, cell) -> str:
        return f"| {name} | " + " | ".join(str(cell(r)) for r in records) + " |"

    def rss_at(record: dict, minute: float) -> str:
        curve = [(s, mb) for s, mb in record["rss_mb"] if s <= record["seconds"] + 5]
        second, mb = min(curve, key=lambda sample: abs(sample[0] - minute * 60))
        return f"{mb:.1f}" if abs(second - minute * 60) <= 30 else "–"

    def reference(record: dict) -> str:
        return rss_at(record, min(5.0, record["seconds"] / 120))

    lines = [SECTION, "", SETUP, "",
             "| | " + " | ".join(f"main {label(r)}" for r in records) + " |",
             "|---|" + "---|" * len(records),
             row("started (UTC)", lambda r: r["started"]),
             row("replica", lambda r: {"file": "directory", "s3": "S3 (SeaweedFS)"}[r.get("backend", "file")]),
             row("duration", lambda r: f"{r['seconds'] / 60:g} min"),
             row("snapshots every / history kept", lambda r: " / ".join(r.get("snapshots", HOURLY_SNAPSHOTS))),
             row("L1 files at the end", lambda r: r["l1_files"]),
             row("`MALLOC_*` in the environment (since `8642a37` the library tunes malloc only without them)", lambda r: " ".join(
                 f"`{k}={v}`" for k, v in sorted(r.get("malloc_env", {}).items())) or "none"),
             row("transactions written", lambda r: f"{r['transactions']:,}"),
             row("queries: follower / holder / traveller", lambda r: " / ".join(
                 f"{r['queries'].get(role, 0):,}" for role in ("follower", "holder", "traveller"))),
             row("sampled answers compared with restore (TXIDs restored)",
                 lambda r: f"{r['comparisons']:,} ({r['restores']:,})"),
             row("errors", lambda r: r["errors"]),
             row("clean errors for states retention really removed", lambda r: r["gone"]),
             row("wrong answers", lambda r: r["wrong"]),
             row("pinned states read past their L0 file's deletion", lambda r: r["holds_outliving_l0"]),
             row("L0 files deleted by retention", lambda r: f"{r['l0_files_deleted']:,}"),
             row("RSS minute 5 → end (MB)", lambda r: f"{reference(r)} → {r['rss_mb'][-1][1]:.1f}"),
             row("passed", lambda r: "yes" if r["passed"] else "no: " + "; ".join(
                 failure.split(": [")[0] for failure in r["failures"])),
             "", "Reader RSS (MB) by minute:", "",
             "| minute | " + " | ".join(label(r) for r in records) + " |",
             "|---|" + "---|" * len(records)]
    lines += [f"| {m} | " + " | ".join(rss_at(r, m) for r in records) + " |" for m in RSS_MINUTES
              if any(r["seconds"] >= m * 60 for r in records)]
    newest = records[-1]["main"]
    lines += ["\n" + memory_table(r) for r in records if r.get("memory") and r["main"] == newest]
    return "\n".join(lines) + "\n"


def label(record: dict) -> str:
    """A run's column heading: its main commit, and its settings where they are not the usual ones."""
    snapshots = tuple(record.get("snapshots", HOURLY_SNAPSHOTS))  # runs that did not record theirs were hourly
    extra = [] if snapshots == HOURLY_SNAPSHOTS else ["snapshots " + "/".join(snapshots)]
    extra += ["`MALLOC_*` set"] if record.get("malloc_env") else []
    return f"`{record['main']}`" + (f" ({', '.join(extra)})" if extra else "")


def memory_table(record: dict) -> str:
    """Where the reader's memory is, by minute, for one run (the readers' own account)."""
    rows = [f"Where the reader's memory is (main {label(record)}, {record.get('backend', 'file')} replica; "
            "glibc malloc over all arenas, SQLite's allocator is part of malloc in use; the rest of RSS is "
            "code, libraries, thread stacks and Python's own object arenas):", "",
            "| minute | RSS MB | malloc in use MB | malloc held free MB | SQLite MB | Python blocks |",
            "|---|---|---|---|---|---|"]
    for minute in RSS_MINUTES:
        sample = min(record["memory"], key=lambda m: abs(m["second"] - minute * 60))
        if abs(sample["second"] - minute * 60) > 30:
            continue
        rss = min(record["rss_mb"], key=lambda r: abs(r[0] - sample["second"]))[1]
        rows.append(f"| {minute} | {rss:.1f} | {sample.get('malloc_used_mb', '–')} | "
                    f"{sample.get('malloc_free_mb', '–')} | {sample['sqlite_mb']} | {sample['python_blocks']:,} |")
    return "\n".join(rows)


def snapshot_settings(text: str) -> Snapshots:
    """'5m/10m' -> Litestream's snapshot interval and retention."""
    interval, slash, retention = text.partition("/")
    if not (interval and slash and retention):
        raise argparse.ArgumentTypeError(f"{text!r}: give INTERVAL/RETENTION, e.g. 5m/10m")
    return Snapshots(interval, retention)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--backend", choices=("file", "s3"), default="file",
                        help="replicate to a directory or to S3 on a local SeaweedFS")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary directory)")
    parser.add_argument("--snapshots", type=snapshot_settings, default=HOURLY_SNAPSHOTS, metavar="INTERVAL/RETENTION",
                        help="Litestream's snapshot interval and retention (e.g. 5m/10m bounds the history)")
    parser.add_argument("--report", type=Path, nargs="+", help="write REPORT.md's section from these results")
    parser.add_argument("--notes", type=Path, help="with --report: a Markdown file appended to the section")
    args = parser.parse_args()
    if args.report:
        from report import replace_section

        records = [json.loads(path.read_text()) for path in args.report]
        notes = "\n" + args.notes.read_text() if args.notes else ""
        replace_section(HERE / "REPORT.md", SECTION, markdown(records) + notes)
        return 0
    from support.soak import run_soak

    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    measured = commit()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, ExitStack() as stack:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        server = None
        if args.backend == "s3":
            from support.seaweed import running_seaweedfs

            server = stack.enter_context(running_seaweedfs(workdir / "seaweedfs"))
        result = run_soak(workdir / "soak", args.minutes * 60, server=server, snapshots=args.snapshots)
    failures = result.failures()
    record = {"started": started, "commit": measured, "main": main_commit(), "passed": not failures, "failures": failures,
              "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}, **asdict(result)}
    out = HERE / "results" / f"soak-{started}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("wrong_samples",)}, indent=1))
    print(f"written to {out}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
