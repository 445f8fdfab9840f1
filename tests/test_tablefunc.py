"""Table-valued functions without apsw.ext: arguments, defaults, hidden columns, early close."""

from __future__ import annotations

from typing import Iterator

import apsw
import pytest

from litestream_vfs.tablefunc import table_function

closed: list[int] = []


def numbers(stop: int, step: int = 1, label: str | None = None) -> Iterator[tuple]:
    try:
        for n in range(0, stop, step):
            yield (n, n * n, label)
    finally:
        closed.append(stop)


numbers.columns = ("n", "square", "tag")


@pytest.fixture
def db() -> apsw.Connection:
    connection = apsw.Connection(":memory:")
    table_function(connection, "numbers", numbers)
    return connection


def test_arguments_in_call_syntax_and_defaults(db):
    assert db.execute("SELECT n, square FROM numbers(4)").fetchall() == [(0, 0), (1, 1), (2, 4), (3, 9)]
    assert db.execute("SELECT n FROM numbers(7, 3)").fetchall() == [(0,), (3,), (6,)]
    assert db.execute("SELECT tag, step FROM numbers(2, 1, 'x')").fetchall() == [("x", 1), ("x", 1)]


def test_arguments_as_hidden_columns(db):
    assert db.execute("SELECT n, stop, step FROM numbers WHERE stop = 3 AND step = 2").fetchall() == [
        (0, 3, 2), (2, 3, 2)]


def test_a_missing_argument_is_an_error_naming_it(db):
    with pytest.raises(TypeError, match="stop"):
        db.execute("SELECT * FROM numbers").fetchall()


def test_stopping_early_closes_the_generator(db):
    closed.clear()
    assert db.execute("SELECT n FROM numbers(1000) LIMIT 2").fetchall() == [(0,), (1,)]
    assert closed == [1000]


def test_joins_call_it_per_outer_row(db):
    rows = db.execute("SELECT s.value, count(*) FROM (SELECT 2 AS value UNION ALL SELECT 3) AS s, "
                      "numbers(s.value) GROUP BY s.value ORDER BY s.value").fetchall()
    assert rows == [(2, 2), (3, 3)]
