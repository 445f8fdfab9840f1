"""The live soak of issue 14 for a chosen length, its figures kept as JSON.

    nice -n 10 python benchmarks/soak.py [--minutes 30] [--workdir DIR]

Runs tests/support/soak.py (the same soak as `pytest -m slow tests/test_soak_live.py`)
and writes benchmarks/results/soak-<UTC time>.json: every figure, the pass
criteria that failed (none when it passed), the RSS curve, the commit measured
and the newest `main` commit it contains.
Exit status 0 when the soak passed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary directory)")
    args = parser.parse_args()
    from support.soak import run_soak

    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    measured = commit()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_soak(workdir, args.minutes * 60)
    failures = result.failures()
    record = {"started": started, "commit": measured, "main": main_commit(), "passed": not failures, "failures": failures,
              **asdict(result)}
    out = HERE / "results" / f"soak-{started}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("wrong_samples",)}, indent=1))
    print(f"written to {out}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
