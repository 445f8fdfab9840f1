"""Row diffs keyed like the table, checked against plain SQL over real `litestream restore` outputs."""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import pytest
from support.incidents import IncidentReplica
from support.replicas import ReplicaFixture, step

import litestream_vfs
from litestream_vfs.connect import connect, replica_uri
from litestream_vfs.process import PROCESS
from litestream_vfs.rowdiff import at_most, diff_schemas, sort_key
from litestream_vfs.timeparse import format_txid
from litestream_vfs.vfs import file_of


def read_only(path: Path) -> apsw.Connection:
    return apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)



def expected_diff(old: Path, new: Path, table: str) -> set[tuple]:
    """The diff by plain SQL over two restored files: rows keyed by the declared PRIMARY KEY
    (rowid where none is declared), common columns compared."""
    def rows(path: Path) -> tuple[list[str], dict[tuple, dict]]:
        conn = read_only(path)
        if not conn.execute("SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", (table,)).fetchall():
            return [], {}
        columns = [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
        keys = [r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk",
                                           (table,))] or ["rowid"]
        select = ", ".join(f'"{k}"' if k != "rowid" else k for k in keys)
        found = {r[:len(keys)]: dict(zip(columns, r[len(keys):]))
                 for r in conn.execute(f'SELECT {select}, * FROM "{table}"')}
        return columns, found
    old_cols, before = rows(old)
    new_cols, after = rows(new)
    common = [c for c in old_cols if c in new_cols]
    out = set()
    for key in before.keys() | after.keys():
        b, a = before.get(key), after.get(key)
        if b is None or a is None or any(b[c] != a[c] for c in common):
            kind = "added" if b is None else "removed" if a is None else "changed"
            out.add((kind, key, json.dumps(b, default=bytes.hex), json.dumps(a, default=bytes.hex)))
    return out


def got_diff(url: str, table: str, a: int, b: int) -> set[tuple]:
    return {(r["change"], tuple(r["key"].values()), json.dumps(r["before"], default=bytes.hex),
             json.dumps(r["after"], default=bytes.hex))
            for r in litestream_vfs.diff(url, table, format_txid(a), format_txid(b))}


@pytest.mark.parametrize("table, first, last", [
    ("Artist", "initial", "final insert"),
    ("Track", "insert artists", "rename tracks"),
    ("bulk", "grow bulk 2", "rewrite bulk"),
    ("bulk", "grow bulk 1", "vacuum"),
    ("audit_log", "create audit table", "fill audit table"),
    ("audit_log", "fill audit table", "drop audit table"),
    ("Customer", "reprice rock", "new invoice"),
    ("PlaylistTrack", "initial", "vacuum"),
    ("PlaylistTrack", "insert artists", "final insert"),
    ("InvoiceLine", "shrink bulk", "new invoice"),
])
def test_diff_equals_plain_sql_over_restores(file_replica: ReplicaFixture, table: str, first: str,
                                             last: str) -> None:
    a, b = step(file_replica, first), step(file_replica, last)
    got = got_diff(file_replica.url, table, a, b)
    assert got == expected_diff(file_replica.restore(a), file_replica.restore(b), table)
    assert got, "each pair was chosen to change something"


def _pages_and_gets(url: str, table: str, a: int, b: int, full_scan: bool) -> tuple[int, int, int, int]:
    """(pages decoded, GETs, bytes, rows) for a diff, or for reading the table in both states, cold."""
    conn = connect(url, txid=format_txid(a))
    conn.execute("ATTACH ? AS after", (replica_uri(url, txid=format_txid(b)),))
    PROCESS.cache.clear()
    files = [file_of(conn, "main"), file_of(conn, "after")]
    for f in files:
        f.counters.reset()
    if full_scan:
        rows = sum(conn.execute(f'SELECT count(*) FROM {s}."{table}" WHERE length(payload) >= 0').fetchall()[0][0]
                   for s in ("main", "after"))
    else:
        rows = len(list(diff_schemas(conn, table)))
    snaps = [f.counters.snapshot() for f in files]
    conn.close()
    return tuple(int(sum(s[k] for s in snaps)) for k in ("pages_decoded", "gets", "bytes_fetched")) + (rows,)


def test_small_diff_on_large_table_reads_few_pages(file_replica: ReplicaFixture) -> None:
    url = file_replica.url
    leaves = read_only(file_replica.restore(step(file_replica, "rewrite bulk"))).execute(
        "SELECT count(*) FROM dbstat WHERE name = 'bulk' AND pagetype = 'leaf'").fetchall()[0][0]
    # The index build changes many pages, none of them bulk's: nothing to read but interiors.
    quiet = _pages_and_gets(url, "bulk", step(file_replica, "grow bulk 2"), step(file_replica, "insert genre"), False)
    full = _pages_and_gets(url, "bulk", step(file_replica, "grow bulk 2"), step(file_replica, "insert genre"), True)
    assert quiet[3] == 0
    assert quiet[0] * 10 < full[0] and quiet[2] * 10 < full[2] and quiet[1] <= full[1], (quiet, full)
    # Three rows in three leaves: interiors plus those leaves (and the neighbours their ranged
    # reads bring along), well below one full scan: fewer pages than the table has leaves, fewer
    # bytes than scanning it. (`full` reads both states; when their plans share files, that is
    # one state's worth, so compare with one scan.) GETs are printed, not bounded: interior
    # pages lie apart in the file, one GET each, while a scan's read-ahead takes megabytes per GET.
    small = _pages_and_gets(url, "bulk", step(file_replica, "insert genre"), step(file_replica, "touch bulk"), False)
    assert small[3] == 3
    assert small[0] * 5 < leaves * 2 and small[2] * 5 < full[2] * 2, (small, full, leaves)
    # 300 of 3000 rows rewritten, one leaf in five: right rows, cost about a scan (no bound asserted:
    # read-ahead across the gaps makes it vary with timing).
    spread = _pages_and_gets(url, "bulk", step(file_replica, "touch bulk"), step(file_replica, "rewrite bulk"), False)
    assert spread[3] == 300
    print(f"bulk diff (pages decoded, GETs, bytes): unchanged {quiet[:3]}, 3 rows {small[:3]}, "
          f"300 rows {spread[:3]}, full scan {full[:3]}; {leaves} leaves")


def test_composite_keys_are_reported_by_their_columns(file_replica: ReplicaFixture) -> None:
    a, b = step(file_replica, "reprice rock"), step(file_replica, "delete playlist")
    removed = list(litestream_vfs.diff(file_replica.url, "PlaylistTrack", a, b))
    assert removed and {tuple(r["key"]) for r in removed} == {("PlaylistId", "TrackId")}
    assert {r["change"] for r in removed} == {"removed"} and {r["key"]["PlaylistId"] for r in removed} == {1}


def test_sort_key_follows_sqlite_binary_order() -> None:
    conn = apsw.Connection(":memory:")
    values = [None, 3, 2.5, -1, "b", "a", "é", b"\x00", b"", 10**12]
    conn.execute("CREATE TABLE t(v)")
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    ordered = [v for v, in conn.execute("SELECT v FROM t ORDER BY v COLLATE BINARY")]
    assert sorted(values, key=lambda v: sort_key((v,))) == ordered


@pytest.mark.parametrize("table", ["PlaylistTrack", "Artist", "stock", "Track"])
def test_diffs_across_vacuum_report_only_real_changes(incident_replica: IncidentReplica, table: str) -> None:
    before, vacuum = incident_replica.step("delete playlist 1"), incident_replica.step("vacuum")
    assert list(litestream_vfs.diff(incident_replica.url, table, before, vacuum)) == []
    for first, last in (("rename artist", "reinsert playlist track"), ("initial", "restock again")):
        a, b = incident_replica.step(first), incident_replica.step(last)
        assert got_diff(incident_replica.url, table, a, b) == expected_diff(
            incident_replica.restore(a), incident_replica.restore(b), table)


def test_a_table_rebuilt_with_new_rowids_shows_no_changes(incident_replica: IncidentReplica) -> None:
    """What makes rowid keys wrong: after the rebuild the same (PlaylistId, TrackId) has another rowid."""
    before, after = incident_replica.step("return stock"), incident_replica.step("rebuild playlist track")
    sql = "SELECT PlaylistId, TrackId, rowid FROM PlaylistTrack"
    old = {r[:2]: r[2] for r in read_only(incident_replica.restore(before)).execute(sql)}
    new = {r[:2]: r[2] for r in read_only(incident_replica.restore(after)).execute(sql)}
    assert old.keys() == new.keys() and sum(old[k] != new[k] for k in old) > len(old) // 2
    assert list(litestream_vfs.diff(incident_replica.url, "PlaylistTrack", before, after)) == []
    assert expected_diff(incident_replica.restore(before), incident_replica.restore(after), "PlaylistTrack") == set()


def test_many_ranges_are_joined_into_covering_runs() -> None:
    ranges = [(i * 10, i * 10 + 5) for i in range(1000)] + [(10_000, None)]
    joined = at_most(ranges, 100)
    assert len(joined) <= 100 and joined[0][0] == 0 and joined[-1] == (joined[-1][0], None)
    assert all(any(lo <= a and (hi is None or (b is not None and b <= hi)) for lo, hi in joined) for a, b in ranges)
    assert at_most(ranges[:5], 100) == ranges[:5]


@pytest.mark.parametrize("first, last", [
    ("create stock", "restock"), ("restock", "sell out"), ("sell out", "return stock"),
    ("return stock", "double store 1"), ("double store 1", "restock again"), ("initial", "create stock"),
])
def test_without_rowid_diffs_equal_plain_sql(incident_replica: IncidentReplica, first: str, last: str) -> None:
    a, b = incident_replica.step(first), incident_replica.step(last)
    assert got_diff(incident_replica.url, "stock", a, b) == expected_diff(
        incident_replica.restore(a), incident_replica.restore(b), "stock")


def test_without_rowid_small_diff_looks_up_only_keys_on_written_pages(incident_replica: IncidentReplica) -> None:
    from litestream_vfs.leafdiff import changed_keys
    from litestream_vfs.tablekey import table_shape

    url, a, b = incident_replica.url, incident_replica.step("create stock"), incident_replica.step("restock")
    conn = connect(url, txid=format_txid(a))
    conn.execute("ATTACH ? AS after", (replica_uri(url, txid=format_txid(b)),))
    shape = table_shape(conn, "main", "stock")
    assert shape is not None
    keys = changed_keys(file_of(conn, "main"), file_of(conn, "after"), shape.rootpage, shape.rootpage, 2)
    total = conn.execute("SELECT count(*) FROM stock").fetchone()[0]
    assert keys is not None and ("sku-010", 2) in keys and len(keys) * 5 < total, (len(keys) if keys else None, total)
    conn.close()
