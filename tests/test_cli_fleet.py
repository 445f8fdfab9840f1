"""`litestream-vfs fleet`, run as a real subprocess over real Litestream directory replication:
rows as `litestream restore` of each database gives them, one stderr line per failed database, exit 3."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import pexpect

from support.fleet import CORRUPT
from support.cli import assert_one_line_error, cli

COUNTS = "SELECT count(*) AS n, sum(qty) AS qty FROM items"


def env_for(fleet_replica) -> dict[str, str]:
    return {**os.environ, **fleet_replica.env}


def assert_corrupt_is_the_one_failure(result) -> None:
    assert result.returncode == 3, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{CORRUPT}: "), result.stderr


def test_json_rows_and_errors(fleet_replicas):
    fleet_replica = fleet_replicas["s3"]
    result = cli("fleet", fleet_replica.dir_url, COUNTS, "--format", "json", "--jobs", "8", env=env_for(fleet_replica))
    assert_corrupt_is_the_one_failure(result)
    out = json.loads(result.stdout)
    assert [(r["db"], r["n"], r["qty"]) for r in out["rows"]] == fleet_replica.truth(COUNTS)
    assert [e["db"] for e in out["errors"]] == [CORRUPT] and out["errors"][0]["error"]


def test_csv_at_a_past_time_for_matching_databases(fleet_replicas):
    fleet_replica = fleet_replicas["file"]
    result = cli("fleet", fleet_replica.dir_url, "SELECT id, qty FROM items ORDER BY id", "--time",
                 fleet_replica.between, "--match", "tenant-0[0-2]*", "--format", "csv")
    assert result.returncode == 0, result.stderr
    got = [tuple(row) for row in csv.reader(io.StringIO(result.stdout))]
    assert got[0] == ("db", "id", "qty")
    chosen = [name for name in fleet_replica.names if name.startswith("tenant-0") and name[8] in "012"]
    truth = [row for row in fleet_replica.truth("SELECT id, qty FROM items ORDER BY id", fleet_replica.round_one)
             if row[0] in chosen]
    assert got[1:] == [tuple(map(str, row)) for row in truth]


def test_table_at_a_txid(fleet_replicas):
    fleet_replica = fleet_replicas["file"]
    result = cli("fleet", fleet_replica.dir_url, COUNTS, "--txid", "1", "--match", "eu/*")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["db", "n", "qty"]
    expected = fleet_replica.truth(COUNTS, {name: 1 for name in fleet_replica.names})
    assert [tuple(line.split()) for line in lines[2:]] == [tuple(map(str, row)) for row in expected
                                                         if row[0].startswith("eu/")]


def test_a_progress_bar_on_a_terminal_only(fleet_replicas):
    fleet_replica = fleet_replicas["file"]
    child = pexpect.spawn(sys.executable, ["-m", "litestream_vfs.cli", "fleet", fleet_replica.dir_url, COUNTS,
                                           "--jobs", "2"], env=os.environ.copy(), encoding="utf-8", timeout=60)
    child.expect(r"fleet \[[#.]+\] +[0-9.]+% \d+/53 databases")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    piped = cli("fleet", fleet_replica.dir_url, COUNTS)
    assert "databases" not in piped.stderr


def test_a_missing_directory_is_one_line(tmp_path):
    assert_one_line_error(cli("fleet", f"{tmp_path}/nowhere/", "SELECT 1"), f"{tmp_path}/nowhere")
