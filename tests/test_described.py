"""Columns of a statement are known before it runs, so an empty result still has them."""

from __future__ import annotations

import apsw

from litestream_vfs.described import Described


def test_columns_of_an_empty_result_and_of_the_last_statement() -> None:
    connection = apsw.Connection(":memory:")
    connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'a')")
    described = Described(connection.cursor())
    assert described.cursor.execute("SELECT id, name, 1 + 1 AS two FROM t WHERE id < 0").fetchall() == []
    assert described.columns == (("id", "INTEGER"), ("name", "TEXT"), ("two", None))
    assert described.names == ["id", "name", "two"]
    described.cursor.execute("SELECT name FROM t").fetchall()
    assert described.names == ["name"]
