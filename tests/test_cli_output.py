"""litestream_vfs.cli.output: the shapes of table, CSV and JSON output, on values of every SQLite type."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from litestream_vfs.cli.output import age_text, write_results, write_rows

ROWS = [(1, "Luís", b"\x00\xff", None, 2.5), (22, "", b"", 7, -1.0)]
COLUMNS = ["i", "text", "blob", "maybe", "real"]


def written(columns, rows, fmt: str) -> str:
    out = io.StringIO()
    write_rows(columns, rows, fmt, out)
    return out.getvalue()


def results_written(results, fmt: str) -> str:
    out = io.StringIO()
    write_results(results, fmt, out)
    return out.getvalue()


def test_one_convention_for_nulls_and_blobs():
    assert json.loads(written(COLUMNS, ROWS, "json")) == [
        {"i": 1, "text": "Luís", "blob": "x'00ff'", "maybe": None, "real": 2.5},
        {"i": 22, "text": "", "blob": "x''", "maybe": 7, "real": -1.0}]
    assert list(csv.reader(io.StringIO(written(COLUMNS, ROWS, "csv")))) == [
        COLUMNS, ["1", "Luís", "x'00ff'", "", "2.5"], ["22", "", "x''", "7", "-1.0"]]
    header, rule, *lines = written(COLUMNS, ROWS, "table").splitlines()
    assert header.split() == COLUMNS and set(rule) == {"-", " "}
    assert [line.split() for line in lines] == [["1", "Luís", "x'00ff'", "NULL", "2.5"], ["22", "x''", "7", "-1.0"]]
    assert "\\u" not in written(COLUMNS, ROWS, "json")


def test_numbers_align_right_and_text_left():
    header, _, first, second = written(["n", "name"], [(5, "a"), (1234, "bcd")], "table").splitlines()
    assert (header, first, second) == ("   n  name", "   5  a", "1234  bcd")


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_several_results_are_blocks_separated_by_an_empty_line(fmt):
    results = [(["a"], [(1,)]), (["b", "c"], [])]
    assert results_written(results, fmt) == "\n".join(written(columns, rows, fmt) for columns, rows in results)


def test_json_gives_one_list_for_one_result_and_a_list_per_result_for_several():
    assert json.loads(results_written([(["a"], [(1,)])], "json")) == [{"a": 1}]
    assert json.loads(results_written([(["a"], [(1,)]), (["b"], [])], "json")) == [[{"a": 1}], []]
    assert results_written([], "json") == results_written([], "table") == results_written([], "csv") == ""


@pytest.mark.parametrize("seconds, text", [(-3, "0s ago"), (42, "42s ago"), (300, "5m ago"), (3 * 3600 + 5, "3h ago"),
                                           (2 * 86400, "2d ago")])
def test_age_text(seconds, text):
    assert age_text(timedelta(seconds=seconds)) == text
