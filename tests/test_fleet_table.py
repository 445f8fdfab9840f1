"""Arrow tables from many databases' rows: column typing, name clashes, and merging shares."""

from __future__ import annotations

import pyarrow as pa
import pytest

from litestream_vfs.fleet_table import TableBuilder, column_array, column_names, merge_tables

#: (database, column names, rows): schemas drift and SQLite types values, not columns.
RESULTS = [
    ("a.db", ["id", "v"], [(1, 10), (2, None)]),
    ("b.db", ["id", "v"], [(3, 2.5)]),
    ("c.db", ["id", "v", "extra"], [(4, "text", b"\x00\xff")]),
    ("d.db", ["id"], []),
    ("e.db", ["id", "v"], [(5, None)]),
]


@pytest.mark.parametrize("values, kind, expected", [
    ([1, None, 3], pa.int64(), [1, None, 3]),
    ([1, 2.5], pa.float64(), [1.0, 2.5]),
    (["a", None], pa.string(), ["a", None]),
    ([b"\x01", None], pa.binary(), [b"\x01", None]),
    ([None, None], pa.null(), [None, None]),
    ([1, "a", b"\x01", 2.5], pa.string(), ["1", "a", "x'01'", "2.5"]),
])
def test_a_column_is_typed_from_all_its_values(values, kind, expected):
    array = column_array(values)
    assert array.type == kind
    assert array.to_pylist() == expected


def test_repeated_names_and_a_query_column_called_db_are_kept_apart():
    assert column_names(["a", "a", "db", "b"]) == ["db", "a", "a.1", "db.1", "b"]


def test_builder_unites_columns_by_name_in_first_seen_order():
    builder = TableBuilder()
    for db, names, rows in RESULTS:
        builder.add(db, names, rows)
    table = merge_tables([builder.table()])
    assert table.column_names == ["db", "id", "v", "extra"]
    assert table.column("db").to_pylist() == ["a.db", "a.db", "b.db", "c.db", "e.db"]
    assert table.column("v").to_pylist() == ["10", None, "2.5", "text", None]
    assert table.column("extra").to_pylist() == [None, None, None, b"\x00\xff", None]
    assert table.schema.field("id").type == pa.int64()


def test_an_empty_result_still_names_its_columns():
    builder = TableBuilder()
    builder.add("a.db", ["id", "name"], [])
    table = merge_tables([builder.table()])
    assert table.column_names == ["db", "id", "name"]
    assert table.num_rows == 0


def test_a_share_keeps_mixed_values_as_they_were():
    builder = TableBuilder()
    builder.add("a.db", ["v"], [(10,), (2.5,), (None,), ("x",)])
    column = builder.table().column("v")
    assert pa.types.is_union(column.type)
    assert column.to_pylist() == [10, 2.5, None, "x"]


@pytest.mark.parametrize("cut", [[1, 2, 3, 4], [2], [1, 3], [4]])
def test_merging_shares_equals_building_once(cut):
    whole = TableBuilder()
    for result in RESULTS:
        whole.add(*result)
    shares, start = [], 0
    for end in [*cut, len(RESULTS)]:
        builder = TableBuilder()
        for result in RESULTS[start:end]:
            builder.add(*result)
        shares.append(builder.table())
        start = end
    merged, once = merge_tables(shares), merge_tables([whole.table()])
    assert merged.equals(once)
    assert merged.schema == once.schema


def test_merging_keeps_int_columns_int_when_every_share_agrees():
    shares = []
    for db, value in (("a.db", 1), ("b.db", None), ("c.db", 3)):
        builder = TableBuilder()
        builder.add(db, ["n"], [(value,)])
        shares.append(builder.table())
    merged = merge_tables(shares)
    assert merged.schema.field("n").type == pa.int64()
    assert merged.column("n").to_pylist() == [1, None, 3]
    assert merge_tables([]).column_names == ["db"]
