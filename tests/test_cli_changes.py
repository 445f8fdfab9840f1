"""`litestream-vfs log` and `diff` (cli/changes.py): every format says what the library says.

Happy paths run `cli.main` in-process against a replica written by real Litestream;
errors run the real command (exit code, one stderr line naming the culprit).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from support.cli import assert_one_line_error, cli
from support.replicas import ReplicaFixture, step

import litestream_vfs
from litestream_vfs import cli as cli_module
from litestream_vfs.timeparse import format_time, format_txid


def run(capsys: pytest.CaptureFixture, *argv: str) -> str:
    assert cli_module.main(list(argv)) == 0
    return capsys.readouterr().out


# -- log --------------------------------------------------------------------------
def test_log_json_is_the_change_log(file_replica: ReplicaFixture, capsys: pytest.CaptureFixture) -> None:
    printed = json.loads(run(capsys, "log", file_replica.url, "--format", "json"))
    assert printed == [{"txid": format_txid(c.txid), "time": format_time(c.time), "tables": dict(c.tables)}
                       for c in litestream_vfs.changes(file_replica.url)]


def test_log_filters_by_table(file_replica: ReplicaFixture, capsys: pytest.CaptureFixture) -> None:
    url = file_replica.url
    touched = [c.txid for c in litestream_vfs.changes(url, table="Genre")]
    assert step(file_replica, "insert genre") in touched
    assert step(file_replica, "insert artists") not in touched
    printed = json.loads(run(capsys, "log", url, "--table", "Genre", "--format", "json"))
    assert [int(e["txid"], 16) for e in printed] == touched
    assert all("Genre" in e["tables"] for e in printed)


def test_log_table_says_what_each_state_covers(file_replica: ReplicaFixture, capsys: pytest.CaptureFixture) -> None:
    changes = list(litestream_vfs.changes(file_replica.url))
    lines = run(capsys, "log", file_replica.url).splitlines()
    assert lines[0].split() == ["txid", "time", "(UTC)", "level", "covers", "tables", "(pages", "changed)"]
    assert len(lines) == 2 + len(changes)
    for line, change in zip(lines[2:], changes):
        covers = (f"{format_txid(change.min_txid)}..{format_txid(change.txid)}" if change.coarse
                  else "1 transaction")
        assert line.startswith(format_txid(change.txid)) and covers in line, line
        assert all(f"{name} ({pages})" in line for name, pages in change.tables.items()), line


def test_log_as_csv_has_the_states_and_tables_of_the_json_log(file_replica: ReplicaFixture,
                                                               capsys: pytest.CaptureFixture) -> None:
    as_json = json.loads(run(capsys, "log", file_replica.url, "--format", "json"))
    rows = list(csv.DictReader(io.StringIO(run(capsys, "log", file_replica.url, "--format", "csv"))))
    assert [(row["txid"], row["time (UTC)"]) for row in rows] == [(e["txid"], e["time"]) for e in as_json]
    assert [row["tables (pages changed)"] for row in rows] == [
        ", ".join(f"{name} ({pages})" for name, pages in e["tables"].items()) for e in as_json]


# -- diff -------------------------------------------------------------------------
def test_diff_json_and_csv_are_the_library_diff(file_replica: ReplicaFixture, capsys: pytest.CaptureFixture) -> None:
    url, a, b = file_replica.url, step(file_replica, "insert genre") - 1, step(file_replica, "insert genre")
    bounds = ["--from", format_txid(a), "--to", format_txid(b)]
    expected = list(litestream_vfs.diff(url, "Genre", a, b))
    assert expected, "the step inserted a genre"
    assert json.loads(run(capsys, "diff", url, "Genre", *bounds, "--format", "json")) == expected
    rows = list(csv.DictReader(io.StringIO(run(capsys, "diff", url, "Genre", *bounds, "--format", "csv"))))
    assert [(r["change"], r["key"]) for r in rows] == [
        (e["change"], ", ".join(f"{k}={v}" for k, v in e["key"].items())) for e in expected]


def test_diff_of_a_missing_table_names_it(file_replica: ReplicaFixture) -> None:
    a = step(file_replica, "insert genre")
    result = cli("diff", file_replica.url, "no_such_table", "--from", format_txid(a - 1), "--to", format_txid(a))
    assert_one_line_error(result, "no_such_table")


@pytest.mark.parametrize("option", ["--from", "--to"])
def test_diff_bound_that_is_neither_txid_nor_time(file_replica: ReplicaFixture, option: str) -> None:
    bounds = {"--from": "latest", "--to": "latest", option: "zz"}
    result = cli("diff", file_replica.url, "Genre", *(arg for pair in bounds.items() for arg in pair))
    assert_one_line_error(result, "'zz' is neither a TXID", "nor a time")
