"""The change log and row diffs, checked against real `litestream restore` outputs."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import apsw
import pytest
from support.replicas import ReplicaFixture

import litestream_vfs
from litestream_vfs import cli
from litestream_vfs.changes import FREE, OwnerMaps, diff_schemas
from litestream_vfs.connect import connect, open_replica, replica_uri
from litestream_vfs.process import PROCESS
from litestream_vfs.timeparse import format_txid
from litestream_vfs.vfs import file_of


def read_only(path: Path) -> apsw.Connection:
    return apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def pages_of(path: Path) -> dict[int, bytes]:
    data = path.read_bytes()
    size = int.from_bytes(data[16:18], "big") or 65536
    return {i // size + 1: data[i:i + size] for i in range(0, len(data), size)}


def owners_of(path: Path) -> dict[int, str]:
    return dict(read_only(path).execute("SELECT pageno, name FROM dbstat"))


def step(replica: ReplicaFixture, name: str) -> int:
    return dict(replica.step_txids)[name]


def test_log_names_the_btrees_each_transaction_changed(file_replica: ReplicaFixture) -> None:
    """Expected names: pages whose bytes differ between two restores, named by dbstat there."""
    replica = open_replica(file_replica.url)
    chains = replica.chains_for()
    maps = OwnerMaps(file_replica.url, replica)
    log = {c.txid: c for c in litestream_vfs.changes(file_replica.url, maps=maps)}
    assert list(log) == list(chains.states)
    assert maps.dbstat_runs < len(log), "neighbouring states with leaf-only changes reuse the map"
    steps = [txid for _, txid in file_replica.step_txids]
    for before, after in zip(steps, steps[1:]):
        entry = log[after]
        assert (entry.level, entry.min_txid, entry.coarse) == (0, after, False)
        if after - 1 != before:
            continue  # the step shipped as several files: compare single transactions only
        old, new = file_replica.restore(before), file_replica.restore(after)
        old_pages, new_pages = pages_of(old), pages_of(new)
        differ = {p for p, data in new_pages.items() if old_pages.get(p) != data and p != 1}
        new_owner, old_owner = owners_of(new), owners_of(old)
        (meta,) = replica.metas([chains.finest(after)])
        assert differ <= set(meta.tail.index), f"TXID {after:x}: a changed page is missing from its file"
        named = {p: new_owner.get(p) or old_owner.get(p) or FREE for p in meta.tail.index}
        expected = {name: list(named.values()).count(name) for name in set(named.values())}
        assert entry.tables == expected, f"TXID {after:x}"
        assert {named[p] for p in differ} <= set(entry.tables)


def test_log_filters_by_table_and_prints_json(file_replica: ReplicaFixture) -> None:
    url = file_replica.url
    touched = [c.txid for c in litestream_vfs.changes(url, table="Genre")]
    assert step(file_replica, "insert genre") in touched
    assert step(file_replica, "insert artists") not in touched
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["log", url, "--table", "Genre", "--format", "json"]) == 0
    printed = json.loads(out.getvalue())
    assert [int(e["txid"], 16) for e in printed] == touched
    assert all(set(e) == {"txid", "time", "tables"} and "Genre" in e["tables"] for e in printed)
    dropped = next(c for c in litestream_vfs.changes(url, since=step(file_replica, "drop audit table"),
                                                      until=step(file_replica, "drop audit table")))
    assert "audit_log" in dropped.tables, "freed pages are named after the dropped table"


def expected_diff(old: Path, new: Path, table: str) -> set[tuple]:
    """The diff by plain SQL over two restored files: rows keyed by rowid, common columns compared."""
    def rows(path: Path) -> tuple[list[str], dict[int, dict]]:
        conn = read_only(path)
        if not conn.execute("SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", (table,)).fetchall():
            return [], {}
        columns = [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
        found = {r[0]: dict(zip(columns, r[1:])) for r in conn.execute(f'SELECT rowid, * FROM "{table}"')}
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


@pytest.mark.parametrize("table, first, last", [
    ("Artist", "initial", "final insert"),
    ("Track", "insert artists", "rename tracks"),
    ("bulk", "grow bulk 2", "rewrite bulk"),
    ("bulk", "grow bulk 1", "vacuum"),
    ("audit_log", "create audit table", "fill audit table"),
    ("audit_log", "fill audit table", "drop audit table"),
    ("Customer", "reprice rock", "new invoice"),
])
def test_diff_equals_plain_sql_over_restores(file_replica: ReplicaFixture, table: str, first: str,
                                             last: str) -> None:
    a, b = step(file_replica, first), step(file_replica, last)
    got = {(r["change"], next(iter(r["key"].values())), json.dumps(r["before"], default=bytes.hex),
            json.dumps(r["after"], default=bytes.hex))
           for r in litestream_vfs.diff(file_replica.url, table, format_txid(a), format_txid(b))}
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


def test_sql_functions(file_replica: ReplicaFixture) -> None:
    conn = connect(file_replica.url)
    genre = step(file_replica, "insert genre")
    rows = conn.execute("SELECT change, key, before, after FROM litestream_diff('Genre', ?, ?)",
                        (format_txid(genre - 1), format_txid(genre))).fetchall()
    after = read_only(file_replica.restore(genre)).execute(
        "SELECT GenreId, Name FROM Genre ORDER BY GenreId DESC LIMIT 1").fetchall()[0]
    assert rows == [("added", json.dumps({"GenreId": after[0]}), None,
                     json.dumps({"GenreId": after[0], "Name": after[1]}))]
    logged = conn.execute("SELECT txid, name, pages FROM litestream_log('Genre') WHERE name = 'Genre'").fetchall()
    assert (format_txid(genre), "Genre", 1) in logged


def test_cli_diff_formats_and_errors(file_replica: ReplicaFixture, capsys: pytest.CaptureFixture) -> None:
    url, a, b = file_replica.url, step(file_replica, "insert genre") - 1, step(file_replica, "insert genre")
    assert cli.main(["diff", url, "Genre", "--from", format_txid(a), "--to", format_txid(b), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == list(litestream_vfs.diff(url, "Genre", a, b))
    assert cli.main(["diff", url, "Genre", "--from", format_txid(a), "--to", format_txid(b), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "change,key,before,after"
    assert cli.main(["diff", url, "no_such_table", "--from", format_txid(a), "--to", format_txid(b)]) == 1
    err = capsys.readouterr().err
    assert "no_such_table" in err and "Traceback" not in err


def test_diff_to_latest_names_the_newest_state(file_replica):
    from litestream_vfs.changes import resolve_state
    from litestream_vfs.connect import open_replica

    replica = open_replica(file_replica.url)
    assert resolve_state(replica, "latest").txid == file_replica.litestream_txids()[-1]
    assert resolve_state(replica, " now ").txid == file_replica.litestream_txids()[-1]
