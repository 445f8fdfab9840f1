"""A tiny run of the start-up profile (no added latency), so benchmarks/startup.py cannot rot.

Only what got loaded and how many requests were made are asserted, never times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_startup_profile_runs_and_writes_its_section(tmp_path: Path) -> None:
    report = tmp_path / "REPORT.md"
    report.write_text("# Report\n\n## Another section\n\nkept\n")
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "startup.py"), "--latency-ms", "0",
                           "--runs", "1", "--results-dir", str(tmp_path), "--report", str(report)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("startup-*.json")
    result = json.loads(path.read_text())
    (run,) = result["open_and_query"]
    assert run["rows"] == [["For Those About To Rock (We Salute You)"]]
    assert run["heavy_modules"] == []  # no boto3, dateparser, apsw.ext, changes, hydrate, notebook, shell
    assert run["round_trips"] <= 3
    assert all(cli["requests"] > 0 for cli in result["cli"].values())
    text = report.read_text()
    assert "## Another section\n\nkept" in text and "## Issue 19: Cold start" in text
    assert "| target (issue 19) | measured | met |" in text
