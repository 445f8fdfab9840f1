"""`query` (and `shell`'s shared options): rows as the real `litestream restore` of the same state
holds them, in every format, at any TXID or time; SQL errors and writes are one line."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

from support.cli import assert_one_line_error, cli, history
from support.replicas import step

ROCK = "SELECT count(*) AS n, max(UnitPrice) AS price FROM Track WHERE GenreId = 1"


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


def test_malformed_txid(file_replica):
    assert_one_line_error(cli("query", file_replica.url, "SELECT 1", "--txid", "xyz"), "'xyz'")


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
