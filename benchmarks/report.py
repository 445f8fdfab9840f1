"""Render benchmarks/REPORT.md from one results JSON (see run.py for how it is produced).

    python benchmarks/report.py benchmarks/results/<timestamp>.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERY_SCENARIOS = ("chinook_pk", "chinook_join", "events_point", "events_range", "events_count",
                   "events_scan")
HYDRATION_SCENARIOS = ("events_hydrate",)
#: Hydration phase names are <moment><query suffix> (see scenarios.hydration_steps).
HYDRATION_MOMENTS = {"open": "open with hydrate=PATH", "cold": "first run, not waiting for the copy",
                     "hydrate_wait": "wait until the copy is ready", "hydrated": "copy ready",
                     "restart_open": "new process: open, same hydrate=PATH",
                     "restart": "new process"}
HYDRATION_QUERIES = {"": "point lookup", "_count": "count(*)", "_scan": "full scan (LIKE)"}
#: The same SQL, measured without hydration: a hydration query must return the same rows.
HYDRATION_SAME_AS = {"": ("events_point", "cold"), "_count": ("events_count", "cold"),
                     "_scan": ("events_scan", "cold")}


@dataclass(frozen=True)
class Run:
    """One engine on one scenario at one latency, with convenient accessors."""

    data: dict

    @property
    def engine(self) -> str:
        return self.data["engine"]

    def phase(self, name: str) -> dict | None:
        return next((p for p in self.data["phases"] if p["phase"] == name), None)

    def phases(self, *names: str) -> list[dict]:
        return [p for p in (self.phase(n) for n in names) if p is not None]

    def seconds(self, *names: str) -> float | None:
        found = self.phases(*names)
        return sum(p["seconds"] for p in found) if len(found) == len(names) else None

    def count(self, kind: str, *names: str) -> int:
        return sum(p["requests"].get(kind, 0) for p in self.phases(*names))

    def requests(self, *names: str) -> int:
        return sum(sum(p["requests"].values()) for p in self.phases(*names))

    def bytes(self, *names: str) -> int:
        return sum(p["bytes"] for p in self.phases(*names))

    def network(self, *names: str) -> float:
        return sum(p.get("network_seconds", 0.0) for p in self.phases(*names))

    def waves(self, *names: str) -> int:
        return sum(p["waves"] for p in self.phases(*names))

    def errors(self) -> list[str]:
        found = [f"{p['phase']}: {p['error']}" for p in self.data["phases"] if p.get("error")]
        return found + ([self.data["error"]] if self.data.get("error") else [])

    def timed_out(self, *names: str) -> bool:
        """Whether any of these phases (default: any phase) was cut off at the time limit."""
        return any(p.get("timed_out") for p in self.data["phases"]
                   if not names or p["phase"] in names)

    def cold_phases(self) -> tuple[str, ...]:
        """Phases that make up "cold": restore (if any), open, first query."""
        return ("restore", "open", "cold") if self.engine == "restore" else ("open", "cold")


class Results:
    def __init__(self, data: dict) -> None:
        self.meta = data["meta"]
        self.runs = [Run(r) for r in data["runs"]]

    def latencies(self) -> list[float]:
        return list(dict.fromkeys(r.data["latency_ms"] for r in self.runs))

    def get(self, latency: float, scenario: str, engine: str) -> Run | None:
        return next((r for r in self.runs if r.data["latency_ms"] == latency
                     and r.data["scenario"] == scenario and r.engine == engine), None)

    def scenario_runs(self, latency: float, scenario: str) -> list[Run]:
        return [r for r in self.runs if r.data["latency_ms"] == latency
                and r.data["scenario"] == scenario]

    def title(self, scenario: str) -> str:
        return next((r.data["title"] for r in self.runs if r.data["scenario"] == scenario), scenario)


def ms(seconds: float | None, lower_bound: bool = False) -> str:
    if seconds is None:
        return "–"
    text = f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.2g}"
    return ("> " if lower_bound else "") + text


def ratio(numerator: float | None, denominator: float | None, lower_bound: bool = False) -> str:
    if not numerator or not denominator:
        return "–"
    return ("> " if lower_bound else "") + f"{numerator / denominator:.1f}×"


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def cold_table(results: Results, latency: float) -> list[str]:
    rows = []
    for scenario in QUERY_SCENARIOS:
        go = results.get(latency, scenario, "go")
        go_total = go.seconds(*go.cold_phases()) if go else None
        for run in results.scenario_runs(latency, scenario):
            cold = run.cold_phases()
            first = cold[:-1]
            total = run.seconds(*cold)
            cut = run.timed_out(*cold)
            if total is None and cut:
                total = sum(p["seconds"] for p in run.phases(*cold))
            vs_go = ratio(go_total, total, lower_bound=bool(go and go.timed_out(*go.cold_phases())))
            rows.append((scenario, run.engine, ms(run.seconds(*first)), ms(run.seconds("cold"), cut),
                         ms(total, cut), run.count("GET", *cold), run.count("LIST", *cold),
                         run.requests(*cold) - run.count("GET", *cold) - run.count("LIST", *cold),
                         f"{run.bytes(*cold) / 1024:,.0f}", run.waves(*cold),
                         ms(run.network(*cold)) if run.requests(*cold) else "–",
                         "–" if run.engine == "go" else vs_go))
    return table(("scenario", "engine", "open ms", "query ms", "total ms", "GETs", "LISTs",
                  "other req", "KiB", "round trips", "on network ms", "Go ÷ this (time)"), rows)


def warm_table(results: Results, latency: float) -> list[str]:
    rows = []
    for scenario in QUERY_SCENARIOS:
        local = results.get(latency, scenario, "local")
        local_warm = local.seconds("warm") if local else None
        for run in results.scenario_runs(latency, scenario):
            if run.phase("warm") is None:
                continue
            rows.append((scenario, run.engine, ms(run.seconds("warm")), run.requests("warm"),
                         ms(run.seconds("conn2_open", "conn2")),
                         run.requests("conn2_open", "conn2"), ratio(run.seconds("warm"), local_warm)))
    return table(("scenario", "engine", "warm query ms (best)", "warm requests",
                  "2nd connection ms", "2nd connection requests", "warm ÷ local"), rows)


def time_jump_table(results: Results, latency: float) -> list[str]:
    rows = []
    for run in results.scenario_runs(latency, "chinook_time"):
        cold, jump = run.phase("cold"), run.phase("jump")
        differs = "yes" if cold and jump and cold.get("digest") != jump.get("digest") else "NO"
        rows.append((run.engine, ms(run.seconds("open", "cold")),
                     ms(run.seconds("set_time", "jump")), run.count("GET", "set_time", "jump"),
                     run.count("LIST", "set_time", "jump"), run.waves("set_time", "jump"),
                     differs if not run.errors() else "error: " + run.errors()[0][:120]))
    return table(("engine", "open + latest query ms", "jump + query ms", "GETs", "LISTs",
                  "round trips", "older result differs"), rows)


def polling_table(results: Results, latency: float) -> list[str]:
    rows = []
    for run in results.scenario_runs(latency, "polling"):
        idle = run.phase("idle")
        if idle is None:
            rows.append((run.engine, "–", "–", "–", "; ".join(run.errors())[:160]))
            continue
        lists = idle["requests"].get("LIST", 0)
        rows.append((run.engine, f"{idle['seconds']:.1f}", lists, f"{lists / idle['seconds']:.2f}",
                     sum(idle["requests"].values()) - lists))
    return table(("engine", "idle s", "LISTs", "LISTs/s (2 connections, 1 replica)",
                  "other requests"), rows)


def empty_table(results: Results, latency: float) -> list[str]:
    rows = []
    for run in results.scenario_runs(latency, "empty_replica"):
        spent = sum(p["seconds"] for p in run.data["phases"] if p["phase"] != "load")
        errors = run.errors()
        outcome = errors[0] if errors else "no error: opened and queried"
        rows.append((run.engine, ms(spent, run.timed_out()), run.requests("open", "cold"),
                     outcome.replace("|", "\\|")[:200]))
    return table(("engine", "time to outcome ms", "requests", "outcome"), rows)


def hydration_step(phase: str) -> tuple[str, str] | None:
    """(moment, query suffix) of a hydration phase name; None for the child's load phases."""
    if phase in HYDRATION_MOMENTS:
        return phase, ""
    moment, _, suffix = phase.rpartition("_")
    named = (moment, f"_{suffix}")
    return named if moment in HYDRATION_MOMENTS and named[1] in HYDRATION_QUERIES else None


def hydration_table(results: Results, latency: float) -> list[str]:
    """Every phase of the hydration runs, in order, with what the proxy saw during it."""
    lines: list[str] = []
    for scenario in HYDRATION_SCENARIOS:
        for run in results.scenario_runs(latency, scenario):
            rows = []
            for phase in run.data["phases"]:
                named = hydration_step(phase["phase"])
                if named is None:
                    continue
                moment, suffix = named
                what = HYDRATION_MOMENTS[moment]
                if moment in ("cold", "hydrated", "restart"):  # the query moments
                    what = f"{HYDRATION_QUERIES[suffix]}, {what}"
                name = phase["phase"]
                rows.append((name, what, ms(phase["seconds"], phase.get("timed_out", False)),
                             run.count("GET", name), run.count("LIST", name),
                             run.requests(name) - run.count("GET", name) - run.count("LIST", name),
                             f"{run.bytes(name) / 1024:,.0f}", run.waves(name),
                             _hydration_after(phase)))
            lines += [f"{scenario}, engine {run.engine}:", ""]
            lines += table(("phase", "step", "ms", "GETs", "LISTs", "other req", "KiB",
                            "round trips", "hydration at the end"), rows)
            lines += hydration_summary(run)
    return lines


def _hydration_after(phase: dict) -> str:
    if phase.get("error"):
        return "error: " + phase["error"].replace("|", "\\|")[:120]
    seen = phase.get("statuses")
    if seen:
        return " → ".join(dict.fromkeys([seen[0], seen[-1]]))
    return phase.get("hydration", "–")


def hydration_summary(run: Run) -> list[str]:
    """How long the build took from the open and what it fetched (its own counters and the proxy's)."""
    wait, opened = run.phase("hydrate_wait"), run.phase("open")
    if not wait or not opened or wait.get("error"):
        return []
    building = ("open", "cold", "cold_count", "hydrate_wait")
    lines = [f"{run.engine}: copy ready {ms(wait['end'] - opened['start'])} ms after the open "
             f"began. The proxy saw, from open to ready (queries included): "
             f"{run.count('GET', *building):,} GETs, {run.count('LIST', *building):,} LISTs, "
             f"{run.bytes(*building) / 1024:,.0f} KiB."]
    last = run.data["phases"][-1]
    for moment, phase in (("By then", wait), ("In the new process", last)):
        if phase.get("hydrator") and (phase is wait or phase["phase"].startswith("restart")):
            own = phase["hydrator"]
            lines.append(f"{moment}, the hydrator itself had fetched {own['gets']:,} GETs, "
                         f"{own['lists']:,} LISTs, {own['bytes_fetched'] / 1024:,.0f} KiB.")
    return [" ".join(lines), ""]


def hydration_problems(results: Results, latency: float) -> list[str]:
    """Hydration queries whose rows differ across moments or from the same query without hydration."""
    problems = []
    for scenario in HYDRATION_SCENARIOS:
        for run in results.scenario_runs(latency, scenario):
            for suffix, (other, other_phase) in HYDRATION_SAME_AS.items():
                digests = {f"{scenario} {p['phase']}": p.get("digest") for p in run.data["phases"]
                           if p.get("row_count") is not None and not p.get("error")
                           and hydration_step(p["phase"]) and hydration_step(p["phase"])[1] == suffix}
                digests.update({f"{other} {r.engine}": r.phase(other_phase)["digest"]
                                for r in results.scenario_runs(latency, other)
                                if r.phase(other_phase) and not r.phase(other_phase).get("error")})
                if len(set(digests.values())) > 1:
                    problems.append(f"{latency:g} ms {scenario}: rows differ {digests}")
            if not run.timed_out():
                problems += [f"{latency:g} ms {scenario} {run.engine}: {e}" for e in run.errors()]
    return problems


def correctness(results: Results) -> list[str]:
    """Scenario phases where engines returned different rows (or failed)."""
    problems = []
    for latency in results.latencies():
        for scenario in QUERY_SCENARIOS + ("chinook_time",):
            runs = results.scenario_runs(latency, scenario)
            for phase in ("cold", "warm", "conn2", "jump"):
                digests = {r.engine: r.phase(phase).get("digest") for r in runs
                           if r.phase(phase) and not r.phase(phase).get("error")}
                if len(set(digests.values())) > 1:
                    problems.append(f"{latency:g} ms {scenario} {phase}: rows differ {digests}")
            for run in runs:
                if not run.timed_out():
                    problems += [f"{latency:g} ms {scenario} {run.engine}: {e}" for e in run.errors()]
        problems += hydration_problems(results, latency)
    cut = [f"{r.data['latency_ms']:g} ms {r.data['scenario']} {r.engine}" for r in results.runs
           if r.timed_out() and r.data["scenario"] != "empty_replica"]
    notes = [f"Cut off at their time limit (not errors): {', '.join(cut)}."] if cut else []
    return (problems or ["Every engine returned the same rows for every query phase; "
                         "no errors."]) + notes


@dataclass(frozen=True)
class Target:
    work: str
    goal: str
    measured: str
    met: bool | None


def targets(results: Results, latency: float) -> list[Target]:
    """The DESIGN.md "numbers to beat", checked against this run at `latency`."""
    def run(scenario: str, engine: str) -> Run | None:
        return results.get(latency, scenario, engine)

    found: list[Target] = []
    ours, go = run("chinook_pk", "ours"), run("chinook_pk", "go")
    if ours:
        waves = ours.waves("open")
        found.append(Target("cold open (Chinook)", "≤ 3 sequential round trips",
                            f"{waves} round trips, {ours.requests('open')} requests, "
                            f"{ms(ours.seconds('open'))} ms (Go: {ms(go.seconds('open')) if go else '–'} ms, "
                            f"{go.requests('open') if go else '–'} requests)", waves <= 3))
    ours, go = run("chinook_join", "ours"), run("chinook_join", "go")
    if ours and go:
        speedup = go.seconds("cold") / ours.seconds("cold")
        gets = ours.count("GET", "cold")
        found.append(Target("join + aggregate, cold (Chinook)", "≥ 5× faster than Go, ≤ 10 GETs",
                            f"query {ms(ours.seconds('cold'))} ms vs Go {ms(go.seconds('cold'))} ms "
                            f"= {speedup:.1f}×; {gets} GETs (Go {go.count('GET', 'cold')})",
                            speedup >= 5 and gets <= 10))
    second = [(s, r.requests("conn2_open", "conn2")) for s in QUERY_SCENARIOS
              if (r := run(s, "ours")) and r.phase("conn2")]
    if second:
        found.append(Target("second connection in the same process", "no requests",
                            ", ".join(f"{s}: {n}" for s, n in second),
                            all(n == 0 for _, n in second)))
    ours, go = run("events_point", "ours"), run("events_point", "go")
    depths = results.meta["datasets"].get("events", {})
    if ours and depths:
        levels = depths["depth_table"] + depths["depth_index"]
        waves = ours.waves("cold")
        found.append(Target("point lookup via index", "one round trip per B-tree level "
                            f"(index {depths['depth_index']} + table {depths['depth_table']} = {levels})",
                            f"{waves} round trips, {ours.count('GET', 'cold')} GETs, "
                            f"{ms(ours.seconds('cold'))} ms (Go {ms(go.seconds('cold')) if go else '–'} ms, "
                            f"{go.count('GET', 'cold') if go else '–'} GETs)", waves <= levels))
    ours, go = run("events_range", "ours"), run("events_range", "go")
    if ours and go:
        speedup = go.seconds("cold") / ours.seconds("cold")
        found.append(Target("1,000-row range via index", "≥ 5× faster than Go",
                            f"{ms(ours.seconds('cold'))} ms vs Go {ms(go.seconds('cold'))} ms = "
                            f"{speedup:.1f}×; {ours.count('GET', 'cold')} GETs "
                            f"(Go {go.count('GET', 'cold')})", speedup >= 5))
    ours, restore = run("events_count", "ours"), run("events_count", "restore")
    if ours and restore:
        restore_s = restore.seconds("restore")
        total = ours.seconds("open", "cold")
        gets = ours.count("GET", "open", "cold")
        found.append(Target("full count(*), events table", "≤ 1.5× `litestream restore` time, ≤ 50 GETs",
                            f"open + query {ms(total)} ms vs restore {ms(restore_s)} ms = "
                            f"{total / restore_s:.2f}×; {gets} GETs", total <= 1.5 * restore_s and gets <= 50))
    ours = run("polling", "ours")
    if ours and ours.phase("idle"):
        idle = ours.phase("idle")
        rate = idle["requests"].get("LIST", 0) / idle["seconds"]
        found.append(Target("background polling", "≤ 1 LIST/s per replica per process",
                            f"{rate:.2f} LISTs/s with 2 connections on one replica", rate <= 1.0))
    for scenario in HYDRATION_SCENARIOS:
        ours = run(scenario, "ours")
        if ours and ours.phase("hydrate_wait"):
            local = [p["phase"] for p in ours.data["phases"]
                     if (hydration_step(p["phase"]) or ("",))[0] in ("hydrated", "restart")]
            gets = {name: ours.count("GET", name) for name in local}
            found.append(Target(f"hydrated reads ({scenario})",
                                "no GETs once the copy is ready, nor after a restart",
                                ", ".join(f"{name}: {n}" for name, n in gets.items())
                                + f"; {ours.count('LIST', *local)} LISTs",
                                bool(gets) and not any(gets.values()) and not ours.errors()))
    ours = run("empty_replica", "ours")
    if ours:
        spent = sum(p["seconds"] for p in ours.data["phases"] if p["phase"] != "load")
        errors = ours.errors()
        found.append(Target("opening an empty replica", "clear error in under a second",
                            f"{ms(spent)} ms: {errors[0][:160] if errors else 'no error'}",
                            bool(errors) and spent < 1.0 and not ours.timed_out()))
    warm = [(s, r.seconds("warm") / l.seconds("warm")) for s in QUERY_SCENARIOS
            if (r := run(s, "ours")) and (l := run(s, "local")) and r.seconds("warm")
            and l.seconds("warm")]
    if warm:
        found.append(Target("warm, cached queries", "≤ 1.3× a local APSW database",
                            ", ".join(f"{s} {x:.1f}×" for s, x in warm),
                            all(x <= 1.3 for _, x in warm)))
    return found


def observations(results: Results, latency: float) -> list[str]:
    """Where our cold time goes: client setup before the first request, network, the rest."""
    lines = []
    for scenario in QUERY_SCENARIOS + ("chinook_time",):
        run = results.get(latency, scenario, "ours")
        if run is None or run.phase("open") is None:
            continue
        log = run.phase("open").get("log") or []
        setup = log[0][3] / 1000 if log else None
        cold = run.cold_phases()
        total = run.seconds(*cold) or 0.0
        network = run.network(*cold)
        gaps = run.waves(*cold)
        lines.append(f"- {scenario}: {ms(total)} ms cold, of which {ms(setup)} ms before the first "
                     f"request of the open, {ms(network)} ms with a request in flight "
                     f"({gaps} round trips), {ms(total - network - (setup or 0))} ms other client work.")
    return lines


#: What the warm ratios mean (measured causes, not numbers: those are in the tables).
WARM_GAP = [
    "- Queries of a few microseconds (point lookups): every read transaction calls into the "
    "Python VFS a handful of times (lock, unlock, the 16-byte change-counter read of page 1, "
    "file size, journal checks); that is about 1 µs more than SQLite's C unix VFS, which shows "
    "as 1.5–1.6× on a 2–3 µs query and vanishes on anything larger (joins and ranges: 1.0–1.1×).",
    "- Full scans larger than SQLite's own page cache on the connection (64 MiB by default for "
    "replica connections): SQLite asks the VFS for every page again, and each page costs a "
    "Python call (~7 µs) even when it is in our page cache, against a memory copy from the OS "
    "cache for a local file. `PRAGMA cache_size` larger than the table, or hydration "
    "(`hydrate=`: reads from a local file), brings such a scan to local speed.",
]


def render(results: Results, source: str) -> str:
    meta, machine = results.meta, results.meta["machine"]
    lines = ["# Benchmark report: litestream-vfs vs Litestream's Go VFS", "",
             f"Generated by `benchmarks/report.py` from `{source}`. Re-run with:", "",
             f"    {meta['command']}", "",
             f"Started {meta['started']}, took {meta['duration_seconds']:.0f} s. "
             f"Commit `{machine['commit']}`{' (with uncommitted changes)' if machine['dirty'] else ''}.",
             "", "## Machine", ""]
    lines += table(("fact", "value"), [(k, v) for k, v in machine.items() if k not in ("commit", "dirty")])
    lines += ["## Datasets", ""]
    lines += table(("name", "bytes", "rows", "notes"), [
        (name, f"{facts['bytes']:,}", f"{facts['rows']:,}" if facts["rows"] else "–",
         ", ".join(f"{k}={v}" for k, v in facts.items() if k not in ("bytes", "rows") and v))
        for name, facts in meta["datasets"].items()])
    lines += [
        "Both replicas are written by the real `litestream replicate -once` (0.5.17) straight to "
        "SeaweedFS; every engine then reads them through a proxy that adds the stated latency to "
        "each request. `events(id INTEGER PRIMARY KEY, user_id, created, payload)` has an index on "
        "`user_id`; user ids follow insertion order (4 rows per user), so a user_id range touches "
        "adjacent table pages. Chinook got two more transactions after its snapshot; "
        "`older_time` is an instant between them.", "",
        "## How to read the tables", "",
        "- Engines: **ours** = this package; **go** = Litestream's Go VFS extension 0.5.17; "
        "**restore** = `litestream restore` through the proxy, then a local query (its open "
        "column includes the restore); **local** = APSW on the source file (OS cache warm).",
        "- Every engine run is a fresh child process: *cold* means no in-process cache. "
        "*open* is `apsw.Connection(...)`, *query* the first execution of the query. "
        "GETs/LISTs/other/KiB/round trips come from the proxy log for open + first query; "
        "*round trips* are waves of non-overlapping requests (requests in flight together "
        "count once). *on network* is the time at least one request was in flight; the rest "
        "of *total* is spent in the client (CPU, imports, client setup).",
        "- *warm*: the same query again on the same connection (best of several). "
        "*2nd connection*: a new connection in the same process, opened and queried.",
        "- A `>` marks a run cut off at its time limit (the Go VFS on full scans): the "
        "numbers are what it did until then.", ""]
    for latency in results.latencies():
        lines += [f"## {latency:g} ms per request", "", "### Cold", ""]
        lines += cold_table(results, latency)
        lines += ["### Warm and second connection", ""]
        lines += warm_table(results, latency)
        lines += ["### Time travel (`PRAGMA litestream_time` to the older Chinook state)", ""]
        lines += time_jump_table(results, latency)
        lines += ["### Background polling", ""]
        lines += polling_table(results, latency)
        lines += ["### Empty replica", ""]
        lines += empty_table(results, latency)
        if any(results.scenario_runs(latency, s) for s in HYDRATION_SCENARIOS):
            lines += ["### Hydration (a local copy built in the background)", "",
                      "Each row is one step, in order; from `restart_open` on, a new process "
                      "opened the same `hydrate=` path. GETs/LISTs/KiB/round trips are "
                      "what the proxy saw during the step, the background build included.", ""]
            lines += hydration_table(results, latency)
    latency = 20.0 if 20.0 in results.latencies() else results.latencies()[0]
    lines += [f"## Targets from DESIGN.md (at {latency:g} ms)", ""]
    lines += table(("work", "target", "measured (ours)", "met"), [
        (t.work, t.goal, t.measured.replace("|", "\\|"),
         "–" if t.met is None else ("**yes**" if t.met else "**no**"))
        for t in targets(results, latency)])
    lines += [f"## Where our cold time goes (at {latency:g} ms)", ""]
    lines += observations(results, latency) + [""]
    lines += ["## Correctness cross-check", ""]
    lines += [f"- {p}" for p in correctness(results)] + [""]
    lines += ["## Why warm queries are not all within 1.3× of local", "", *WARM_GAP, ""]
    return "\n".join(lines)


def report_text(results_path: Path) -> str:
    """The report for one results JSON, as Markdown."""
    results = Results(json.loads(results_path.read_text()))
    try:
        source = str(results_path.resolve().relative_to(HERE.parent))
    except ValueError:
        source = str(results_path)
    return render(results, source)


def replace_section(report: Path, heading: str, text: str) -> None:
    """Put `text` in place of the report's section titled `heading` (up to the next `## `
    heading), or append it: how the one-issue benchmark scripts keep their own section."""
    current = report.read_text() if report.exists() else ""
    start = current.find(heading)
    if start < 0:
        report.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    following = current.find("\n## ", start + len(heading))
    report.write_text(current[:start] + text + (current[following + 1:] if following >= 0 else ""))


def write_report(results_path: Path, report_path: Path) -> None:
    """Regenerate the report from one run, keeping the per-issue sections (`## Issue …`) that
    their own scripts wrote, in their order."""
    kept = issue_sections(report_path.read_text()) if report_path.exists() else []
    report_path.write_text("\n\n".join([report_text(results_path).rstrip("\n"), *kept]) + "\n")


def issue_sections(report: str) -> list[str]:
    """Every `## Issue …` section of a report, each up to the next `## ` heading."""
    sections = []
    for part in report.split("\n## ")[1:]:
        if part.startswith("Issue "):
            sections.append("## " + part.rstrip("\n"))
    return sections


if __name__ == "__main__":
    write_report(Path(sys.argv[1]), HERE / "REPORT.md")
