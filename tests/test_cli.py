"""The `litestream-vfs` command line, run as a real subprocess (real exit codes, real stderr).

Expected values come from the real `litestream restore` of the same state.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from support.replicas import ReplicaFixture

ROCK = "SELECT count(*) AS n, max(UnitPrice) AS price FROM Track WHERE GenreId = 1"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m litestream_vfs.cli ARGS`; `env` replaces the environment when given."""
    return subprocess.run([sys.executable, "-m", "litestream_vfs.cli", *args], capture_output=True, text=True,
                          env=env if env is not None else os.environ.copy(), cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)



def step(fixture: ReplicaFixture, name: str) -> int:
    return dict(fixture.step_txids)[name]


def history(fixture: ReplicaFixture) -> list[dict]:
    result = cli("history", fixture.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess, *culprits: str) -> None:
    """Exit 1, exactly one stderr line naming every culprit, no traceback, nothing on stdout."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("litestream-vfs: error: ")
    for culprit in culprits:
        assert culprit in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# -- happy paths -----------------------------------------------------------------
def test_query_formats_match_ground_truth(file_replica):
    latest = file_replica.litestream_txids()[-1]
    (count, price), = file_replica.truth(latest, ROCK)

    as_json = cli("query", file_replica.url, ROCK, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [{"n": count, "price": price}]

    as_csv = cli("query", file_replica.url, ROCK, "--format", "csv")
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["n", "price"], [str(count), str(price)]]

    table = cli("query", file_replica.url, ROCK).stdout.splitlines()
    assert table[0].split() == ["n", "price"]
    assert set(table[1]) == {"-", " "}
    assert table[2].split() == [str(count), str(price)]


def test_query_at_txid_and_at_a_time_copied_from_history(file_replica):
    before = step(file_replica, "reprice rock") - 1
    expected = file_replica.truth(before, ROCK)
    assert expected != file_replica.truth(step(file_replica, "reprice rock"), ROCK)

    by_txid = cli("query", file_replica.url, ROCK, "--txid", f"{before:x}", "--format", "json")
    assert [tuple(row.values()) for row in json.loads(by_txid.stdout)] == expected

    when = next(entry["time"] for entry in history(file_replica) if int(entry["txid"], 16) == before)
    by_time = cli("query", file_replica.url, ROCK, "--time", when, "--format", "json")
    assert [tuple(row.values()) for row in json.loads(by_time.stdout)] == expected


def test_query_with_no_matching_rows_still_names_the_columns(file_replica):
    empty = "SELECT GenreId, Name FROM Genre WHERE GenreId < 0"
    assert json.loads(cli("query", file_replica.url, empty, "--format", "json").stdout) == []
    assert cli("query", file_replica.url, empty, "--format", "csv").stdout == "GenreId,Name\n"
    assert cli("query", file_replica.url, empty).stdout.splitlines()[0].split() == ["GenreId", "Name"]


STATEMENTS = ("SELECT GenreId, Name FROM Genre WHERE GenreId <= 2 ORDER BY GenreId",
              "SELECT count(*) AS n FROM Track",
              "SELECT Name AS none FROM MediaType WHERE 0")


def test_several_statements_each_print_under_their_own_columns(file_replica):
    latest = file_replica.litestream_txids()[-1]
    expected = [file_replica.truth(latest, sql) for sql in STATEMENTS]
    columns = [["GenreId", "Name"], ["n"], ["none"]]
    sql = "; ".join(STATEMENTS) + ";"

    as_json = cli("query", file_replica.url, sql, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [[dict(zip(names, row)) for row in rows]
                                          for names, rows in zip(columns, expected)]

    blocks = cli("query", file_replica.url, sql, "--format", "csv").stdout.split("\n\n")
    assert [list(csv.reader(io.StringIO(block))) for block in blocks] == [
        [names] + [[str(v) for v in row] for row in rows] for names, rows in zip(columns, expected)]

    tables = cli("query", file_replica.url, sql).stdout.split("\n\n")
    assert [block.splitlines()[0].split() for block in tables] == columns
    assert [[line.split(maxsplit=1) for line in block.splitlines()[2:]] for block in tables] == [
        [[str(v) for v in row] for row in rows] for rows in expected]
    # One statement with rows keeps the plain shape, also after statements without result columns.
    single = cli("query", file_replica.url, "PRAGMA cache_size = 100; " + STATEMENTS[1], "--format", "json")
    assert json.loads(single.stdout) == [{"n": expected[1][0][0]}]


BLOB_AND_NAME = ("SELECT c.FirstName || ' ' || c.LastName AS name, substr(b.payload, 1, 4) AS head, NULL AS missing"
                 " FROM Customer c JOIN bulk b ON b.id = 20 WHERE c.CustomerId = 1")


def test_blobs_nulls_and_non_ascii_text_are_one_convention_in_every_format(file_replica):
    (name, head, _), = file_replica.truth(file_replica.litestream_txids()[-1], BLOB_AND_NAME)
    assert isinstance(head, bytes) and any(ord(ch) > 127 for ch in name)
    blob = f"x'{head.hex()}'"

    as_json = cli("query", file_replica.url, BLOB_AND_NAME, "--format", "json").stdout
    assert json.loads(as_json) == [{"name": name, "head": blob, "missing": None}]
    assert f'"{name}"' in as_json  # not \u-escaped
    as_csv = cli("query", file_replica.url, BLOB_AND_NAME, "--format", "csv").stdout
    assert list(csv.reader(io.StringIO(as_csv))) == [["name", "head", "missing"], [name, blob, ""]]
    table = cli("query", file_replica.url, BLOB_AND_NAME).stdout.splitlines()
    assert re.split(r" {2,}", table[2]) == [name, blob, "NULL"]


def test_history_for_programs_and_people(file_replica):
    entries = history(file_replica)
    assert [int(e["txid"], 16) for e in entries] == file_replica.litestream_txids()
    assert all(set(e) == {"txid", "time", "level", "size", "db_size"} for e in entries)
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)

    lines = cli("history", file_replica.url).stdout.splitlines()
    assert lines[0].split()[:4] == ["txid", "time", "(UTC)", "local"]
    rows = lines[2:]
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries):
        assert row.startswith(f"{entry['txid']}  {entry['time']}  ")
        assert " ago " in row
    assert len({len(row) for row in rows}) == 1  # aligned: numbers right-aligned to one width


def test_log_as_csv_has_the_states_and_tables_of_the_json_log(file_replica):
    as_json = json.loads(cli("log", file_replica.url, "--format", "json").stdout)
    as_csv = cli("log", file_replica.url, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(row["txid"], row["time (UTC)"]) for row in rows] == [(e["txid"], e["time"]) for e in as_json]
    assert [row["tables (pages changed)"] for row in rows] == [
        ", ".join(f"{name} ({pages})" for name, pages in e["tables"].items()) for e in as_json]


def test_restore_writes_the_state_litestream_restores(file_replica, tmp_path):
    txid = step(file_replica, "vacuum")
    out = tmp_path / "restored.db"
    result = cli("restore", file_replica.url, "-o", str(out), "--txid", f"{txid:016x}")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == file_replica.restore(txid).read_bytes()
    assert "\r" not in result.stderr and "[#" not in result.stderr  # no progress bar into a pipe
    assert f"{txid:016x}" in result.stderr


def test_restore_shows_progress_only_on_a_terminal(file_replica, tmp_path):
    out = tmp_path / "tty.db"
    child = pexpect.spawn(sys.executable, ["-m", "litestream_vfs.cli", "restore", file_replica.url, "-o", str(out)],
                          encoding="utf-8", timeout=60, dimensions=(24, 200))
    child.expect(r"restoring TXID [0-9a-f]{16} .*\[#+\.*\] +\d+\.\d%")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert out.read_bytes() == file_replica.restore(file_replica.litestream_txids()[-1]).read_bytes()


def test_validate_passes_on_a_real_replica(file_replica):
    result = cli("validate", file_replica.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("OK:")
    assert sum(line.startswith("ok   L") for line in result.stdout.splitlines()) == len(file_replica.ltx_files())


# -- errors: one line, exit 1, no traceback --------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bad_url_scheme():
    assert_one_line_error(cli("history", "bogus://bucket/db"), "bogus")


def test_s3_without_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LITESTREAM_"))}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    url = f"s3://bucket/db?endpoint=http://127.0.0.1:{_free_port()}&region=us-east-1&forcePathStyle=true"
    assert_one_line_error(cli("query", url, "SELECT 1", env=env), "credentials", "s3://bucket/db")


@pytest.mark.parametrize("command", ["query", "shell", "restore"])
def test_unparseable_time(file_replica, tmp_path, command):
    extra = {"query": ["SELECT 1"], "shell": [], "restore": ["-o", str(tmp_path / "x.db")]}[command]
    result = cli(command, file_replica.url, *extra, "--time", "the day after never")
    assert_one_line_error(result, "'the day after never'")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("option", ["--from", "--to"])
def test_diff_bound_that_is_neither_txid_nor_time(file_replica, option):
    bounds = {"--from": "latest", "--to": "latest", option: "zz"}
    result = cli("diff", file_replica.url, "Genre", *(arg for pair in bounds.items() for arg in pair))
    assert_one_line_error(result, "'zz' is neither a TXID", "nor a time")


def test_time_before_history_names_the_available_states(file_replica):
    txids = file_replica.litestream_txids()
    result = cli("query", file_replica.url, "SELECT 1", "--time", "2001-01-01T00:00:00Z")
    assert_one_line_error(result, "2001-01-01T00:00:00", f"{txids[0]:016x}", f"{txids[-1]:016x}")


@pytest.mark.parametrize("where", ["beyond", "zero"])
def test_txid_outside_history_names_the_available_states(file_replica, tmp_path, where):
    txids = file_replica.litestream_txids()
    given = {"beyond": f"{txids[-1] + 1000:016x}", "zero": "0"}[where]
    available = (f"{given:0>16}", f"available states: TXID {txids[0]:016x}", f"to TXID {txids[-1]:016x}")
    assert_one_line_error(cli("query", file_replica.url, "SELECT 1", "--txid", given), *available)
    out = tmp_path / "never.db"
    assert_one_line_error(cli("restore", file_replica.url, "-o", str(out), "--txid", given), *available)
    assert not out.exists()


def test_malformed_txid(file_replica):
    assert_one_line_error(cli("query", file_replica.url, "SELECT 1", "--txid", "xyz"), "'xyz'")


def test_restore_refuses_to_overwrite(file_replica, tmp_path):
    out = tmp_path / "precious.db"
    out.write_bytes(b"keep me")
    assert_one_line_error(cli("restore", file_replica.url, "-o", str(out)), str(out))
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("where, reason", [("missing/dir/x.db", "No such file or directory"),
                                           ("a-file/x.db", "Not a directory")])
def test_restore_into_a_place_that_cannot_hold_the_file_names_it(file_replica, tmp_path, where, reason):
    (tmp_path / "a-file").write_bytes(b"")
    out = tmp_path / where
    result = cli("restore", file_replica.url, "-o", str(out))
    assert_one_line_error(result, f"cannot create {out}: {reason}")
    assert ".partial" not in result.stderr


@pytest.mark.parametrize("command", ["query", "history", "restore", "validate", "shell", "log"])
def test_empty_missing_and_directory_urls(tmp_path, command):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    extra = {"query": ["SELECT 1"], "restore": ["-o", str(tmp_path / "out.db")]}.get(command, [])
    assert_one_line_error(cli(command, str(empty), *extra), str(empty))
    assert_one_line_error(cli(command, str(missing), *extra), str(missing))
    assert_one_line_error(cli(command, f"{tmp_path}/", *extra), "directory of replicas")


@pytest.mark.parametrize("url, missing", [("s3://", "no bucket name"), ("webdav://", "no host name")])
@pytest.mark.parametrize("command", ["query", "history"])
def test_a_url_without_bucket_or_host_says_so(url, missing, command):
    extra = ["SELECT 1"] if command == "query" else []
    assert_one_line_error(cli(command, url, *extra), f"'{url}' has {missing}")


def test_a_reader_that_leaves_early_gets_no_error_message(file_replica):
    """`litestream-vfs query ... | head -1`: the closed pipe ends the command quietly."""
    child = subprocess.Popen([sys.executable, "-m", "litestream_vfs.cli", "query", file_replica.url,
                              "SELECT * FROM Track"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
    assert child.stdout.readline().split()[0] == b"TrackId"
    child.stdout.close()
    assert child.wait(timeout=120) == 1
    assert child.stderr.read() == b""
    child.stderr.close()


def test_sql_error_is_one_line(file_replica):
    assert_one_line_error(cli("query", file_replica.url, "SELECT nope FROM Track"), "nope")


def test_writes_are_refused(file_replica):
    assert_one_line_error(cli("query", file_replica.url, "DELETE FROM Track"), "readonly")


def test_debug_shows_the_traceback(tmp_path):
    result = cli("--debug", "history", str(tmp_path / "missing"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr and str(tmp_path / "missing") in result.stderr


@pytest.mark.parametrize("args", [[], ["query"], ["query", "x", "SELECT 1", "--time", "now", "--txid", "1"],
                                  ["history", "x", "--format", "xml"]])
def test_usage_errors_exit_2(args):
    result = cli(*args)
    assert result.returncode == 2
    assert "usage: litestream-vfs" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["first", "after the command", "last"])
def test_debug_is_accepted_anywhere(tmp_path, where):
    missing = str(tmp_path / "missing")
    args = {"first": ["--debug", "query", missing, "SELECT 1"],
            "after the command": ["query", "--debug", missing, "SELECT 1"],
            "last": ["query", missing, "SELECT 1", "--debug"]}[where]
    result = cli(*args)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and missing in result.stderr


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch, capsys, file_replica):
    """Whatever a command raises, main() prints one line naming it (traceback only with --debug)."""
    from litestream_vfs import notebook
    from litestream_vfs.cli import main

    def broken(*args, **kwargs):
        raise KeyError("no such thing")

    monkeypatch.setattr(notebook, "results", broken)
    assert main(["query", file_replica.url, "SELECT 1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("litestream-vfs: error: KeyError: 'no such thing'") and "--debug" in err
    with pytest.raises(KeyError):
        main(["query", file_replica.url, "SELECT 1", "--debug"])
