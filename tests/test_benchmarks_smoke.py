"""A tiny run of the benchmark runner (no added latency), so benchmarks/ cannot rot.

Only request counts and rows are asserted, never times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("ours", "go", "restore", "local")
WRITES = ("PUT", "POST", "DELETE")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    report = out / "REPORT.md"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--latency-ms", "0",
         "--scenario", "chinook_pk", "--scenario", "chinook_time",
         "--scenario", "events_hydrate", "--events-mb", "3",  # a snapshot above the 1 MiB whole-fetch limit
         "--results-dir", str(out), "--report", str(report)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("*.json")
    return json.loads(path.read_text()), report


def _runs(data: dict, scenario: str) -> dict[str, dict]:
    return {r["engine"]: r for r in data["runs"] if r["scenario"] == scenario}


def _phase(run: dict, name: str) -> dict:
    return next(p for p in run["phases"] if p["phase"] == name)


def test_every_engine_ran_and_agreed(results: tuple[dict, Path]) -> None:
    data, report = results
    runs = _runs(data, "chinook_pk")
    assert set(runs) == set(ENGINES)
    assert all(not r["error"] and not any(p.get("error") for p in r["phases"])
               for r in runs.values())
    assert len({_phase(r, "cold")["digest"] for r in runs.values()}) == 1
    assert "chinook_pk" in report.read_text()


def test_request_counts(results: tuple[dict, Path]) -> None:
    data, _ = results
    runs = _runs(data, "chinook_pk")
    ours, local = runs["ours"], runs["local"]
    assert all(not p["requests"] for p in local["phases"])
    cold = [_phase(ours, "open"), _phase(ours, "cold")]
    assert sum(p["requests"].get("GET", 0) for p in cold) > 0
    assert sum(p["requests"].get("LIST", 0) for p in cold) > 0
    # Our own counters agree with what the proxy saw.
    seen = sum(p["requests"].get("GET", 0) for p in cold)
    assert _phase(ours, "cold")["stats"]["gets"] == seen
    # Warm and second-connection reads come from the shared cache.
    for name in ("warm", "conn2_open", "conn2"):
        assert _phase(ours, name)["requests"] == {}
    for run in data["runs"]:
        assert not any(p["requests"].get(kind) for p in run["phases"] for kind in WRITES)


def test_time_jump_reads_the_older_state(results: tuple[dict, Path]) -> None:
    data, _ = results
    for engine, run in _runs(data, "chinook_time").items():
        assert _phase(run, "jump")["digest"] != _phase(run, "cold")["digest"], engine
    assert len({_phase(r, "jump")["digest"] for r in _runs(data, "chinook_time").values()}) == 1


def test_hydration_reads_locally_once_ready_and_after_a_restart(results: tuple[dict, Path]) -> None:
    data, report = results
    run = _runs(data, "events_hydrate")["ours"]
    assert not run["error"] and not any(p.get("error") for p in run["phases"])
    assert _phase(run, "hydrate_wait")["statuses"][-1].startswith("ready")
    assert _phase(run, "hydrate_wait")["hydrator"]["gets"] > 0  # the build fetched the copy
    # Once ready, and in a new process after a restart, queries read the copy: no GETs,
    # not even for the full scan that no query had fetched remotely.
    queries = [p for p in run["phases"] if p["phase"].startswith(("hydrated", "restart"))
               and "digest" in p]
    assert {p["phase"] for p in queries} >= {"hydrated_scan", "restart_scan"}
    assert all(p["requests"].get("GET", 0) == 0 and p["hydration"].startswith("ready")
               for p in queries), [(p["phase"], p["requests"], p["hydration"]) for p in queries]
    # The new process trusted the copy on disk: its hydrator fetched nothing.
    assert _phase(run, "restart_scan")["hydrator"]["gets"] == 0
    for suffix in ("", "_count", "_scan"):
        digests = {p["phase"]: p["digest"] for p in run["phases"]
                   if p["phase"] in (f"cold{suffix}", f"hydrated{suffix}", f"restart{suffix}")}
        assert len(digests) >= 2 and len(set(digests.values())) == 1, digests
    assert "Hydration" in report.read_text()


def test_regenerating_the_report_keeps_every_issue_section(results: tuple[dict, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from report import write_report

    _, report = results
    (path,) = report.parent.glob("*.json")
    target = tmp_path / "REPORT.md"
    target.write_text("# old\n\n## Issue 15: one\n\nkept 1\n\n## Machine\n\nold machine\n\n"
                      "## Issue 16: two\n\nkept 2\n")
    write_report(path, target)
    text = target.read_text()
    assert text.startswith(report.read_text().split("\n## ")[0])  # the run's own report first
    assert "## Issue 15: one\n\nkept 1" in text and text.rstrip().endswith("## Issue 16: two\n\nkept 2")
    assert "old machine" not in text and text.count("## Issue") == 2
