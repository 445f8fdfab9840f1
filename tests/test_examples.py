"""Every script in examples/ runs, in a subprocess, and prints what the real replica holds.

The demo replica is built once per session by the examples themselves (with the
real `litestream replicate`); expected values come from `litestream restore`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import apsw
import pytest

from litestream_vfs.connect import open_replica
from litestream_vfs.timeparse import parse_time
from support.binaries import litestream_binary
from support.replicas import run_restore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

from attach_diff import TABLES  # noqa: E402 - the examples directory is not a package
from data_tools import SQL as ROCK_SUMMARY  # noqa: E402
from quickstart import ROCK_PRICES  # noqa: E402
from time_travel import SNAPSHOT  # noqa: E402

TXID = r"([0-9a-f]{16})"


class DemoTruth:
    """Ground truth for the demo replica in `cache`: `litestream restore` of any state."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.replica = cache / "replica"
        self._restored: dict[int, Path] = {}
        self._lock = threading.Lock()

    def path(self, txid: int) -> Path:
        with self._lock:
            if txid not in self._restored:
                out = self.cache.parent / f"truth-{txid:016x}.db"
                run_restore(litestream_binary("0.5.17"), f"file://{self.replica}", out, {}, txid)
                self._restored[txid] = out
            return self._restored[txid]

    def connection(self, txid: int) -> apsw.Connection:
        return apsw.Connection(str(self.path(txid)), flags=apsw.SQLITE_OPEN_READONLY)

    def rows(self, txid: int, sql: str) -> list[tuple]:
        return self.connection(txid).execute(sql).fetchall()

    def latest(self) -> int:
        return max(int(p.name.split("-")[1].split(".")[0], 16) for p in self.replica.glob("ltx/*/*.ltx"))

    def txid_at(self, when: str) -> int:
        return open_replica(str(self.replica)).state_at(parse_time(when)).txid


def example(name: str, cache: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "LITESTREAM_REPLICA_URL"}
    environment.update(LITESTREAM_VFS_DEMO_DIR=str(cache), **(env or {}))
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=environment, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def run_example(name: str, cache: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = example(name, cache, *args, env=env)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def assert_example_error(result: subprocess.CompletedProcess, name: str, *culprits: str) -> None:
    """Exit 1 with one line on stderr naming the example and every culprit, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"{name}: error: ")
    for culprit in culprits:
        assert culprit in result.stderr


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def quickstart_runs(tmp_path_factory) -> tuple[str, str, DemoTruth, bool]:
    """Run quickstart twice on an empty cache: (first output, second output, truth, replica untouched)."""
    cache = tmp_path_factory.mktemp("demo") / "cache"
    first = run_example("quickstart.py", cache)
    before = listing(cache)
    second = run_example("quickstart.py", cache)
    return first, second, DemoTruth(cache), listing(cache) == before


@pytest.fixture(scope="session")
def demo(quickstart_runs) -> DemoTruth:
    return quickstart_runs[2]


def test_quickstart_builds_once_then_reuses(quickstart_runs):
    first, second, truth, untouched = quickstart_runs
    assert first.startswith(f"Built the demo replica in {truth.replica}\n")
    assert second.startswith(f"Reusing the demo replica in {truth.replica}\n")
    assert untouched
    assert first.split("\n", 1)[1].rsplit("Done in", 1)[0] == second.split("\n", 1)[1].rsplit("Done in", 1)[0]


def test_quickstart_shows_latest_and_past_state(quickstart_runs):
    output, _, truth, _ = quickstart_runs
    latest = int(re.search(rf"Latest state: TXID {TXID}", output).group(1), 16)
    past = int(re.search(rf"Time travel to \S+ \(TXID {TXID}\)", output).group(1), 16)
    assert latest == truth.latest() and past < latest
    printed = re.findall(r"(?:now|then): (\d+) rock tracks priced (\S+) to (\S+)", output)
    expected = [tuple(str(v) for v in truth.rows(txid, ROCK_PRICES)[0]) for txid in (latest, past)]
    assert printed == expected
    assert expected[0] != expected[1]


def test_quickstart_ends_with_commands_that_work_on_the_demo(quickstart_runs):
    output, _, truth, _ = quickstart_runs
    commands = [shlex.split(line) for line in output.split("\nNext, ", 1)[1].splitlines()[1:]]
    assert [(command[1], command[2]) for command in commands] == [
        (name, str(truth.replica)) for name in ("history", "diff", "shell")]
    history, diff, shell = (subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                                           input="SELECT City FROM Customer WHERE CustomerId = 1;\n")
                            for command in commands)
    assert [result.returncode for result in (history, diff, shell)] == [0, 0, 0], (history, diff, shell)
    states = open_replica(str(truth.replica)).chains_for().states
    assert [line.split()[0] for line in history.stdout.splitlines()[2:]] == [f"{txid:016x}" for txid in states]
    then = commands[2][commands[2].index("--time") + 1]
    city = "SELECT City FROM Customer WHERE CustomerId = 1"
    before, after = truth.rows(truth.txid_at(then), city)[0][0], truth.rows(truth.latest(), city)[0][0]
    assert before != after
    assert [line.split()[:2] for line in diff.stdout.splitlines()[2:]] == [["changed", "CustomerId=1"]]
    assert f"City={before}," in diff.stdout and f"City={after}," in diff.stdout
    assert shell.stdout.strip() == before


def test_readme_commands_for_the_demo_work_on_a_fresh_demo(demo):
    """The README's copy-paste lines for the demo (TXIDs, not '1 hour ago': the demo is minutes old)."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    block = re.search(r"```sh\nR=~/\.cache/litestream-vfs/demo/replica[^\n]*\n(.*?)```", readme, re.DOTALL).group(1)
    env = {**os.environ, "R": str(demo.replica), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = {}
    for line in block.splitlines():
        result = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert (result.returncode, result.stderr) == (0, ""), line
        outputs[line.split()[1]] = result.stdout
    assert set(outputs) == {"history", "query", "diff"}
    sql = re.search(r'query \$R "([^"]+)" --txid 1', block).group(1)
    assert outputs["query"].splitlines()[2].split() == [str(v) for v in demo.rows(1, sql)[0]]
    assert [line.split()[:2] for line in outputs["diff"].splitlines()[2:]] == [["changed", "CustomerId=1"]]


def test_time_travel_walks_every_state(demo):
    output = run_example("time_travel.py", demo.cache)
    rows = re.findall(rf"^  {TXID}  (\S+)  +(\d+)  +(\S+)  (.+)$", output, re.MULTILINE)
    assert [int(txid, 16) for txid, *_ in rows] == sorted(f.max_txid for f in open_replica(str(demo.replica)).files
                                                        if f.level == 0)
    for txid, _, artists, price, city in rows:
        assert (artists, price, city) == tuple(str(v) for v in demo.rows(int(txid, 16), SNAPSHOT)[0])
    opened = re.search(rf"Opened at litestream_time=(\S+): TXID {TXID}, customer 1 lives in (.+)$", output, re.MULTILINE)
    when, txid, city = opened.groups()
    assert int(txid, 16) == demo.txid_at(when)
    assert city == demo.rows(int(txid, 16), "SELECT City FROM Customer WHERE CustomerId = 1")[0][0]
    assert re.search(rf"Back to latest: TXID {TXID}", output).group(1) == f"{demo.latest():016x}"


def test_attach_diff_counts_match_ground_truth(demo):
    output = run_example("attach_diff.py", demo.cache)
    now, then = (int(t, 16) for t in re.search(rf"main \(TXID {TXID}\) with past \(TXID {TXID}", output).groups())
    assert (now, then) == (demo.latest(), min(f.max_txid for f in open_replica(str(demo.replica)).files))
    truth = demo.connection(now)
    truth.execute("ATTACH ? AS past", (str(demo.path(then)),))
    for table in TABLES:
        added = len(truth.execute(f"SELECT * FROM main.{table} EXCEPT SELECT * FROM past.{table}").fetchall())
        gone = len(truth.execute(f"SELECT * FROM past.{table} EXCEPT SELECT * FROM main.{table}").fetchall())
        assert f"  {table}: {added} rows new or changed, {gone} old versions gone" in output
    assert "rows new or changed, 0 old" in output and re.search(r": [1-9]\d* rows new or changed", output)


def test_pandas_analysis(demo):
    output = run_example("pandas_analysis.py", demo.cache)
    since = re.search(r"Customers changed since (\S+):", output).group(1)
    then, now = demo.txid_at(since), demo.latest()
    prices = "SELECT g.Name, avg(t.UnitPrice) FROM Track t JOIN Genre g USING (GenreId) GROUP BY g.Name"
    before = dict(demo.rows(then, prices))
    changed = {genre: round(price - before[genre], 2) for genre, price in demo.rows(now, prices)
               if round(price - before[genre], 2)}
    assert changed
    for genre, delta in changed.items():
        assert re.search(rf"^{re.escape(genre)}\s+{delta}$", output, re.MULTILINE)
    everyone = "SELECT * FROM Customer"
    moved = {row[0] for row in set(demo.rows(now, everyone)) - set(demo.rows(then, everyone))}
    assert moved
    table = output.split(f"Customers changed since {since}:\n", 1)[1].splitlines()
    assert sorted(int(line.split()[0]) for line in table[1:]) == sorted(moved)


def test_data_tools_read_two_points_in_time(demo):
    output = run_example("data_tools.py", demo.cache)
    then, now = demo.txid_at(re.search(r"^now: latest; then: (\S+)$", output, re.MULTILINE).group(1)), demo.latest()
    (tracks_now, price_now), (tracks_then, price_then) = demo.rows(now, ROCK_SUMMARY)[0], demo.rows(then, ROCK_SUMMARY)[0]
    assert price_now != price_then
    for tool in ("pandas", "Polars", "jupysql"):
        assert f"{tool}: now {tracks_now} rock tracks at {price_now}, then {tracks_then} at {price_then}" in output
    prices = "SELECT TrackId, UnitPrice FROM Track"
    repriced = len(dict(demo.rows(now, prices)).items() - dict(demo.rows(then, prices)).items())
    assert f"DuckDB: {repriced} tracks repriced since then" in output


def test_dotenv_config_reads_the_url_loaded_after_import(demo):
    output = run_example("dotenv_config.py", demo.cache)
    txid, albums = re.search(rf"chinook.db at TXID {TXID}: (\d+) albums", output).groups()
    assert int(txid, 16) == demo.latest()
    assert int(albums) == demo.rows(demo.latest(), "SELECT count(*) FROM Album")[0][0]


def test_dotenv_config_with_a_missing_file_says_so(demo, tmp_path):
    missing = tmp_path / "missing.env"
    result = example("dotenv_config.py", demo.cache, str(missing))
    assert_example_error(result, "dotenv_config.py", f"{missing} does not exist")
    assert "Loaded" not in result.stdout


def test_s3_custom_endpoint_on_an_empty_bucket_says_so(demo, seaweedfs):
    path = f"empty-{os.getpid()}/chinook.db"
    result = example("s3_custom_endpoint.py", demo.cache, "--endpoint", seaweedfs.endpoint_url,
                     "--bucket", seaweedfs.bucket, "--path", path, "--region", seaweedfs.region,
                     env=seaweedfs.credentials_env())
    assert_example_error(result, "s3_custom_endpoint.py", f"s3://{seaweedfs.bucket}/{path}")


def test_s3_custom_endpoint_against_seaweedfs(demo, seaweedfs):
    path = f"examples-{os.getpid()}/chinook.db"
    output = run_example("s3_custom_endpoint.py", demo.cache, "--endpoint", seaweedfs.endpoint_url,
                         "--bucket", seaweedfs.bucket, "--path", path, "--region", seaweedfs.region,
                         "--upload-demo", env=seaweedfs.credentials_env())
    txid, artists = re.search(rf"{re.escape(seaweedfs.bucket)}/{re.escape(path)}\?\S+ at TXID {TXID}: (\d+) artists",
                              output).groups()
    assert int(txid, 16) == demo.latest()
    assert int(artists) == demo.rows(demo.latest(), "SELECT count(*) FROM Artist")[0][0]
    lists, gets = map(int, re.search(r"requests: (\d+) LIST, (\d+) GET", output).groups())
    assert lists >= 1 and gets >= 1
