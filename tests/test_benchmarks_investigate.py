"""A tiny run of benchmarks/investigate.py (no added latency): both ways agree, ours asks less."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_investigate_benchmark_runs_and_agrees(tmp_path: Path) -> None:
    report = tmp_path / "REPORT.md"
    report.write_text("# Report\n\n## Issue 16: blame, bisect and small diffs on the 100 MB table\n\nstale text\n\n## Next\n")
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "investigate.py"), "--states", "6",
                           "--events-mb", "1", "--latency-ms", "0", "--verify", "ranges", "--results-dir", str(tmp_path),
                           "--report", str(report)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("investigate-*.json")
    runs = json.loads(path.read_text())["runs"]["ranges"]
    assert runs["blame"]["result"] == runs["blame-naive"]["result"]
    assert runs["bisect"]["result"]["txid"] == runs["bisect-naive"]["result"]["txid"] != "0000000000000000"
    assert runs["diff"]["result"] == runs["diff-naive"]["result"] == {"rows": 3}
    assert runs["blame"]["GET"] < runs["blame-naive"]["GET"]
    text = report.read_text()
    assert "stale text" not in text and text.count("## Issue 16") == 1 and "## Next" in text and "| blame of one row" in text
