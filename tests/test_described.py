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


def test_columns_follow_a_schema_change_seen_only_when_the_statement_runs(tmp_path) -> None:
    """A connection prepares with its cached schema; the first step re-prepares with the new one."""
    path = str(tmp_path / "t.db")
    writer = apsw.Connection(path)
    writer.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    reader = apsw.Connection(path)
    assert reader.execute("SELECT * FROM t").fetchall() == [(1,)]  # caches the schema
    writer.execute("ALTER TABLE t ADD COLUMN y DEFAULT 5")
    blocks: list[list[str]] = []
    described = Described(reader.cursor(), on_start=blocks.append)
    assert described.cursor.execute("SELECT * FROM t").fetchall() == [(1, 5)]
    assert described.names == ["x", "y"]
    assert blocks == [["x", "y"]]
