"""Reproducible benchmark: our VFS vs Litestream's Go VFS vs `litestream restore` vs local SQLite.

    python benchmarks/run.py [--latency-ms 20] [--latency-ms 80] [--quick]

Starts SeaweedFS and a latency-adding, request-counting proxy on loopback,
ships the datasets with the real `litestream replicate`, runs every scenario
cold in a fresh child process per engine, then writes
benchmarks/results/<timestamp>.json and regenerates benchmarks/REPORT.md.
Every process started is stopped by PID on the way out, failures included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
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
sys.path[:0] = [str(HERE), str(REPO / "tests")]

import apsw  # noqa: E402

from datasets import Dataset, LITESTREAM_VERSION, btree_depth, ship_chinook, ship_events  # noqa: E402
from report import report_text, write_report  # noqa: E402
from scenarios import Scenario, by_name  # noqa: E402
from support.binaries import go_vfs_extension, litestream_binary  # noqa: E402
from support.proxy import Proxy, RequestRecord, count_waves  # noqa: E402
from support.replicas import child_env  # noqa: E402
from support.seaweed import SeaweedFS, running_seaweedfs  # noqa: E402

CHILD = HERE / "child.py"
FULL_EVENTS_MB = 100
QUICK_EVENTS_MB = 10
QUICK_GO_CAP = 15.0
#: Phases with at most this many requests keep a per-request log (kind, object, bytes,
#: start and duration in ms) in the results, as evidence of what an engine fetched.
LOGGED_REQUESTS = 120


def s3_url(server: SeaweedFS, proxy: Proxy, prefix: str) -> str:
    """A Litestream-style URL for `prefix` that reaches SeaweedFS through the proxy."""
    return (f"s3://{server.bucket}/{prefix}?endpoint={proxy.url}"
            f"&region={server.region}&forcePathStyle=true")


def phase_metrics(records: Sequence[RequestRecord], start: float, end: float) -> dict:
    """Requests the proxy saw start within [start, end): counts by kind, bytes, waves."""
    inside = [r for r in records if start <= r.start < end]
    kinds: dict[str, int] = {}
    for record in inside:
        kinds[record.kind] = kinds.get(record.kind, 0) + 1
    metrics = {"requests": kinds, "bytes": sum(r.response_bytes for r in inside),
               "waves": count_waves(inside), "network_seconds": _covered(inside)}
    if len(inside) <= LOGGED_REQUESTS:
        metrics["log"] = [[r.kind, r.path.rsplit("/", 2)[-2:][-1] if r.kind == "GET" else
                           f"{r.path}?{r.query}", r.response_bytes,
                           round((r.start - start) * 1000, 1), round((r.end - r.start) * 1000, 1)]
                          for r in sorted(inside, key=lambda r: r.start)]
    return metrics


def _covered(records: Sequence[RequestRecord]) -> float:
    """Seconds during which at least one request was in flight (union of intervals)."""
    total, horizon = 0.0, float("-inf")
    for record in sorted(records, key=lambda r: r.start):
        begin = max(record.start, horizon)
        if record.end > begin:
            total += record.end - begin
        horizon = max(horizon, record.end)
    return round(total, 4)


def read_phases(output: Path, records: Sequence[RequestRecord], killed_at: float | None,
                timeout: float) -> list[dict]:
    """The child's phase records joined with the proxy log; an unfinished phase is a timeout."""
    lines = [json.loads(line) for line in output.read_text().splitlines()] if output.is_file() else []
    phases, pending = [], None
    for line in lines:
        if "begin" in line:
            pending = line
            continue
        pending = None
        phases.append({**line, **phase_metrics(records, line["start"], line["end"])})
    if pending is not None and killed_at is not None:
        phases.append({"phase": pending["begin"], "start": pending["start"], "end": killed_at,
                       "seconds": killed_at - pending["start"], "timed_out": True,
                       "error": f"no result within the {timeout:g} s limit (child killed)",
                       **phase_metrics(records, pending["start"], killed_at)})
    return phases


class Bench:
    """Runs children against one SeaweedFS + proxy and collects their measurements."""

    def __init__(self, server: SeaweedFS, proxy: Proxy, workdir: Path,
                 datasets: dict[str, Dataset], go_cap: float | None = None) -> None:
        self.server, self.proxy, self.workdir, self.datasets = server, proxy, workdir, datasets
        self.go_cap = go_cap
        #: Comparing verify= modes: our runs end with a phase that waits for background verification.
        self.wait_verified = False
        self._runs = 0

    def run(self, scenario: Scenario, engine: str) -> dict:
        dataset = self.datasets[scenario.dataset]
        steps = scenario.steps_for(engine, dataset)
        timeout = scenario.timeout
        if engine == "go" and scenario.go_timeout:
            timeout = min(scenario.go_timeout, self.go_cap or scenario.go_timeout)
        url = s3_url(self.server, self.proxy, dataset.key_prefix)
        env = child_env(self.server.credentials_env())
        if engine == "ours" or engine in VERIFY_ENGINES:
            # ours = verify=auto (the default); VERIFY_ENGINES: the other modes. The
            # last phase waits for background verification, so its requests are counted too.
            variant = VERIFY_ENGINES.get(engine, {})
            steps = [{**step, **variant} if step["op"] == "open" else step for step in steps]
            if self.wait_verified:
                steps.append({"op": "wait_verified", "phase": "verified", "conn": 0})
            return self._processes("ours", url, steps, env, timeout)
        if engine == "go":
            env.update(LITESTREAM_REPLICA_URL=url, LITESTREAM_LOG_LEVEL="INFO")
            return self._processes("go", url, steps, env, timeout, str(go_vfs_extension()))
        if engine == "local":
            return self._child("local", str(dataset.local_path), steps, env, timeout)
        if engine == "restore":
            return self._restore_then_query(url, steps, env, timeout)
        raise ValueError(f"unknown engine {engine!r}")

    def _processes(self, engine: str, url: str, steps: list[dict], env: dict[str, str],
                   timeout: float, extension: str | None = None) -> dict:
        """One child per run of steps between `new_process` markers, all with one hydration
        path (when a step asks for hydration), so a later child finds what an earlier one left."""
        hydrate = self.workdir / "hydrated" / f"{self._runs + 1:04d}" / "copy.db"
        wanted = str(hydrate) if any(step.get("hydrate") for step in steps) else None
        phases: list[dict] = []
        error = None
        try:
            for load_phase, segment in split_processes(steps):
                result = self._child(engine, url, segment, env, timeout, extension,
                                     hydrate=wanted, load_phase=load_phase)
                phases += result["phases"]
                error = result["error"]
                if error or any(p.get("timed_out") for p in result["phases"]):
                    break
        finally:
            shutil.rmtree(hydrate.parent, ignore_errors=True)
        return {"phases": phases, "error": error}

    def _child(self, engine: str, target: str, steps: list[dict], env: dict[str, str],
               timeout: float, extension: str | None = None, hydrate: str | None = None,
               load_phase: str = "load") -> dict:
        self._runs += 1
        rundir = self.workdir / "runs" / f"{self._runs:04d}-{engine}"
        rundir.mkdir(parents=True)
        output = rundir / "phases.jsonl"
        spec = {"engine": engine, "target": target, "extension": extension, "steps": steps,
                "output": str(output), "hydrate": hydrate, "load_phase": load_phase}
        self.proxy.reset()
        killed_at = None
        try:
            done = subprocess.run([sys.executable, str(CHILD), json.dumps(spec)], cwd=rundir,
                                  env=env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
            failure = (f"child exit {done.returncode}: {done.stderr.strip()[-1500:]}"
                       if done.returncode else None)
        except subprocess.TimeoutExpired:
            killed_at = time.monotonic()
            failure = None
        return {"phases": read_phases(output, self.proxy.records(), killed_at, timeout),
                "error": failure}

    def _restore_then_query(self, url: str, steps: list[dict], env: dict[str, str],
                            timeout: float) -> dict:
        out = self.workdir / "restored" / f"{self._runs:04d}.db"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.proxy.reset()
        start, perf = time.monotonic(), time.perf_counter()
        done = subprocess.run([str(litestream_binary(LITESTREAM_VERSION)), "restore", "-o",
                               str(out), url], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        restore = {"phase": "restore", "start": start, "end": time.monotonic(),
                   "seconds": time.perf_counter() - perf,
                   **phase_metrics(self.proxy.records(), start, time.monotonic())}
        if done.returncode != 0:
            restore["error"] = done.stderr.strip()[-1500:]
            return {"phases": [restore], "error": "litestream restore failed"}
        queried = self._child("local", str(out), steps, env, timeout)
        out.unlink()
        return {"phases": [restore, *queried["phases"]], "error": queried["error"]}


#: Engines that are our VFS with another `verify=` mode (run only when named with --engine);
#: ours_before: verify=ranges with the whole-fetch limit before issue 15 (256 KiB).
VERIFY_ENGINES = {"ours_full": {"verify": "full"}, "ours_ranges": {"verify": "ranges"},
                  "ours_before": {"verify": "ranges", "whole_file_limit": 256 * 1024}}


def split_processes(steps: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """Steps cut at `new_process` markers: (name of the child's load phase, its steps)."""
    segments: list[tuple[str, list[dict]]] = [("load", [])]
    for step in steps:
        if step["op"] == "new_process":
            segments.append((step["phase"], []))
        else:
            segments[-1][1].append(step)
    return segments


def machine_facts() -> dict:
    """What a reader needs to compare numbers across machines and commits."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").is_file() else platform.processor()
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").is_file() else 0
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "apsw": apsw.apsw_version(), "sqlite": apsw.sqlite_lib_version(),
            "litestream": LITESTREAM_VERSION, "go_vfs": LITESTREAM_VERSION,
            "commit": _git("rev-parse", "--short", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, action="append",
                        help="latency the proxy adds to every request (repeatable; default 20)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_EVENTS_MB} MB events table and one latency")
    parser.add_argument("--events-mb", type=int, help="size of the events table (MB)")
    parser.add_argument("--go-cap", type=float,
                        help="seconds before the Go VFS is stopped on a full scan "
                             f"(default: per scenario; {QUICK_GO_CAP:g} with --quick)")
    parser.add_argument("--scenario", action="append", help="run only these (repeatable)")
    parser.add_argument("--engine", action="append", help="run only these engines (repeatable)")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md",
                        help="report to regenerate from this run ('-': print it instead)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the benchmark; return the path of the results JSON."""
    args = parse_args(argv)
    latencies = args.latency_ms or [20.0]
    if args.quick:
        latencies = latencies[:1]
    events_mb = args.events_mb or (QUICK_EVENTS_MB if args.quick else FULL_EVENTS_MB)
    scenarios = by_name(args.scenario)
    began = datetime.now(timezone.utc)
    clock = time.perf_counter()
    runs = []
    workdir = Path(tempfile.mkdtemp(prefix="litestream-vfs-bench-"))
    try:
        with ExitStack() as stack:
            server = stack.enter_context(running_seaweedfs(workdir / "seaweedfs"))
            needed = {s.dataset for s in scenarios}
            datasets: dict[str, Dataset] = {
                "empty": Dataset("empty", workdir / "empty.db", "bench/empty.db")}
            if "chinook" in needed:
                datasets["chinook"] = ship_chinook(workdir, server)
            if "events" in needed:
                datasets["events"] = ship_events(workdir, server, events_mb)
            print(f"datasets shipped in {time.perf_counter() - clock:.1f} s", flush=True)
            proxy = stack.enter_context(Proxy(server.endpoint_url))
            bench = Bench(server, proxy, workdir, datasets,
                          args.go_cap or (QUICK_GO_CAP if args.quick else None))
            bench.wait_verified = any(e in VERIFY_ENGINES for e in args.engine or ())
            for latency in latencies:
                proxy.latency = latency / 1000
                for scenario in scenarios:
                    extra = [e for e in args.engine or () if e in VERIFY_ENGINES and "ours" in scenario.engines]
                    for engine in (*scenario.engines, *extra):
                        if args.engine and engine not in args.engine:
                            continue
                        result = bench.run(scenario, engine)
                        runs.append({"latency_ms": latency, "scenario": scenario.name,
                                     "title": scenario.title, "engine": engine, **result})
                        print(f"{latency:g} ms {scenario.name:14} {engine:8} "
                              f"{_summary(result)}", flush=True)
            meta = {"command": _command(argv), "started": began.isoformat(timespec="seconds"),
                    "duration_seconds": round(time.perf_counter() - clock, 1),
                    "latencies_ms": latencies, "machine": machine_facts(),
                    "datasets": _dataset_facts(datasets, events_mb)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{began.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    if str(args.report) == "-":
        print(report_text(path), flush=True)
    else:
        write_report(path, args.report)
    print(f"results: {path}", flush=True)
    return path


def _dataset_facts(datasets: dict[str, Dataset], events_mb: int) -> dict:
    facts: dict[str, dict] = {}
    for name, dataset in datasets.items():
        if not dataset.local_path.is_file():
            continue
        facts[name] = {"bytes": dataset.local_path.stat().st_size, "rows": dataset.rows,
                       "older_time": dataset.older_time}
    if "events" in datasets:
        path = datasets["events"].local_path
        facts["events"].update(target_mb=events_mb, depth_table=btree_depth(path, "events"),
                               depth_index=btree_depth(path, "events_user"))
    return facts


def _summary(result: dict) -> str:
    parts = []
    for phase in result["phases"]:
        requests = sum(phase["requests"].values())
        parts.append(f"{phase['phase']}={phase['seconds'] * 1000:.0f}ms/{requests}r"
                     + ("!" if phase.get("error") else ""))
    return " ".join(parts) + (f" ERROR {result['error'][:200]}" if result["error"] else "")


def _command(argv: Sequence[str] | None) -> str:
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", "benchmarks/run.py", *args])


if __name__ == "__main__":
    main()
