"""Tables are keyed by their declared PRIMARY KEY; keys typed by users are read in that order."""

from __future__ import annotations

import apsw
import pytest

from litestream_vfs.errors import ReplicaError
from litestream_vfs.tablekey import key_values, table_shape


@pytest.fixture(scope="module")
def conn() -> apsw.Connection:
    db = apsw.Connection(":memory:")
    db.execute("""
        CREATE TABLE plain(a, b);
        CREATE TABLE ipk(id INTEGER PRIMARY KEY, v);
        CREATE TABLE pair(x INT, y TEXT, v, PRIMARY KEY (y, x));
        CREATE TABLE intdesc(id INTEGER PRIMARY KEY DESC, v);
        CREATE TABLE named(code TEXT PRIMARY KEY, v);
        CREATE TABLE wr(sku TEXT, store INT, qty, PRIMARY KEY (sku, store)) WITHOUT ROWID;
    """)
    return db


@pytest.mark.parametrize("table, keys, rowid, by_rowid", [
    ("plain", ("rowid",), True, True),
    ("ipk", ("id",), True, True),
    ("pair", ("y", "x"), True, False),
    ("intdesc", ("id",), True, False),
    ("named", ("code",), True, False),
    ("wr", ("sku", "store"), False, False),
])
def test_shapes(conn: apsw.Connection, table: str, keys: tuple, rowid: bool, by_rowid: bool) -> None:
    shape = table_shape(conn, "main", table)
    assert shape is not None and (shape.key_names, shape.rowid, shape.by_rowid) == (keys, rowid, by_rowid)
    assert table_shape(conn, "main", "missing") is None


def test_key_values_in_key_order(conn: apsw.Connection) -> None:
    pair, ipk, named = (table_shape(conn, "main", t) for t in ("pair", "ipk", "named"))
    assert key_values(pair, '{"x": 1, "y": "a"}') == ("a", 1)
    assert key_values(pair, {"X": 1, "Y": "a"}) == ("a", 1)
    assert key_values(pair, ["a", 1]) == ("a", 1)
    assert key_values(ipk, "42") == (42,) and key_values(ipk, 42) == (42,)
    assert key_values(named, "ABC") == ("ABC",) and key_values(named, '"7"') == ("7",)
    assert key_values(named, '{"code": "z"}') == ("z",)


@pytest.mark.parametrize("table, key, named", [
    ("pair", '{"x": 1}', "x, y"),
    ("pair", "5", "y, x"),
    ("ipk", "abc", "id"),
    ("ipk", '"7"', "id"),
])
def test_bad_keys_name_what_is_expected(conn: apsw.Connection, table: str, key: str, named: str) -> None:
    with pytest.raises(ReplicaError, match=table) as caught:
        key_values(table_shape(conn, "main", table), key)
    assert all(n.strip() in str(caught.value) for n in named.split(","))
