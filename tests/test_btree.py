"""Table b-tree pages parsed from bytes agree with what SQLite itself reports (dbstat, SQL)."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from litestream_vfs import btree


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, bytes]]:
    """A three-level table b-tree with a freelist, and its pages by number."""
    path = tmp_path_factory.mktemp("btree") / "t.db"
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA page_size=512; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    with conn:
        conn.executemany("INSERT INTO t VALUES (?, ?)", ((i * 3 - 5000, "x" * (i % 40)) for i in range(4000)))
        conn.execute("CREATE TABLE gone(v)")
        conn.executemany("INSERT INTO gone VALUES (?)", (("y" * 100,) for _ in range(200)))
    conn.execute("DROP TABLE gone")
    conn.close()
    data = path.read_bytes()
    return path, {i // 512 + 1: data[i:i + 512] for i in range(0, len(data), 512)}


def test_varint_round_trips_sqlite_encodings() -> None:
    assert btree.varint(bytes([0x7F]), 0) == (127, 1)
    assert btree.varint(bytes([0x81, 0x00]), 0) == (128, 2)
    assert btree.varint(bytes([0xFF] * 9), 0) == (-1, 9)


def test_leaves_hold_every_rowid_in_order(database: tuple[Path, dict[int, bytes]]) -> None:
    path, pages = database
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    leaves = [p for p, in conn.execute("SELECT pageno FROM dbstat WHERE name='t' AND pagetype='leaf' ORDER BY path")]
    rowids = [r for p in leaves for r in btree.leaf_rowids(pages[p], p)]
    assert rowids == [r for r, in conn.execute("SELECT rowid FROM t ORDER BY rowid")]
    assert all(btree.kind(pages[p], p) == btree.TABLE_LEAF for p in leaves)


def test_interior_children_bound_and_route_every_rowid(database: tuple[Path, dict[int, bytes]]) -> None:
    path, pages = database
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    root, = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name='t'").fetchone()
    assert btree.kind(pages[root], root) == btree.TABLE_INTERIOR
    level, depth = [btree.Child(root, None, None)], 0
    while btree.kind(pages[level[0].pgno], level[0].pgno) == btree.TABLE_INTERIOR:
        level = [c for node in level for c in btree.interior_children(pages[node.pgno], node.pgno, node.low, node.high)]
        depth += 1
    assert depth >= 2, "the fixture should need more than one interior level"
    for leaf in level:
        for rowid in btree.leaf_rowids(pages[leaf.pgno], leaf.pgno):
            assert (leaf.low is None or rowid > leaf.low) and (leaf.high is None or rowid <= leaf.high)
            node = btree.Child(root, None, None)
            while btree.kind(pages[node.pgno], node.pgno) == btree.TABLE_INTERIOR:
                node = btree.child_for(pages[node.pgno], node.pgno, rowid, node.low, node.high)
            assert node.pgno == leaf.pgno
    assert btree.first_key(pages[level[1].pgno], level[1].pgno) == btree.leaf_rowids(pages[level[1].pgno],
                                                                                       level[1].pgno)[0]


def test_freelist_trunks_list_every_free_page(database: tuple[Path, dict[int, bytes]]) -> None:
    _, pages = database
    free, trunk = set(), btree.freelist_trunk(pages[1])
    while trunk:
        free.add(trunk)
        trunk, leaves = btree.trunk_entries(pages[trunk])
        free.update(leaves)
    assert len(free) == int.from_bytes(pages[1][36:40], "big") > 0


def test_index_cell_keys_read_every_key_of_a_without_rowid_table(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA page_size=1024; CREATE TABLE w(a TEXT, b INT, c, PRIMARY KEY (a, b)) WITHOUT ROWID")
    with conn:  # long rows overflow, but their keys stay on the page
        conn.executemany("INSERT INTO w VALUES (?, ?, ?)", ((f"k{i:04d}", i % 7, "x" * (i % 900)) for i in range(3000)))
    data = path.read_bytes()
    pages = {i // 1024 + 1: data[i:i + 1024] for i in range(0, len(data), 1024)}
    keys = []
    for pgno, in conn.execute("SELECT pageno FROM dbstat WHERE name = 'w' AND pagetype != 'overflow'"):
        found = btree.index_cell_keys(pages[pgno], pgno, 2, 1024)
        assert found is not None
        keys += found
    assert sorted(keys) == sorted(conn.execute("SELECT a, b FROM w").fetchall())
    assert conn.execute("SELECT count(*) FROM dbstat WHERE name = 'w' AND pagetype = 'overflow'").fetchone()[0] > 0


def test_record_prefix_decodes_every_serial_type(tmp_path: Path) -> None:
    values = (None, 0, 1, -5, 300, -70000, 2**31, 2**40, -2**62, 1.5, "h\u00e9llo", b"\x00\x01", "")
    path = tmp_path / "r.db"
    conn = apsw.Connection(str(path))
    columns = ", ".join(f"c{i}" for i in range(len(values)))
    conn.execute(f"CREATE TABLE t({columns}); CREATE INDEX ix ON t({columns})")
    conn.execute(f"INSERT INTO t VALUES ({', '.join('?' * len(values))})", values)
    pgno, = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'ix'").fetchone()
    page = path.read_bytes()[(pgno - 1) * 4096:pgno * 4096]
    assert btree.index_cell_keys(page, pgno, len(values), 4096) == [values]
    assert btree.index_cell_keys(page, pgno, 3, 4096) == [values[:3]]
    assert btree.record_prefix(b"\x03\x01\x01\x05", 2) is None, "the second value is cut off"
