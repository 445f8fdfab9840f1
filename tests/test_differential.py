"""Differential test: Litestream's own Go VFS and ours read the same replica identically.

Both read the latest state of a replica real Litestream wrote (on S3 and in a
directory); every table, compared row by row, plus a few aggregate queries.
"""

from __future__ import annotations

import apsw

from litestream_vfs.connect import connect
from support.binaries import go_vfs_extension
from support.govfs import run_go_vfs

QUERIES = [
    "SELECT g.Name, count(*), round(sum(il.UnitPrice * il.Quantity), 2) FROM InvoiceLine il "
    "JOIN Track t USING (TrackId) JOIN Genre g USING (GenreId) GROUP BY g.Name ORDER BY g.Name",
    "SELECT * FROM Track WHERE TrackId BETWEEN 1000 AND 1100 ORDER BY TrackId",
]


def _normalise(rows) -> list[list]:
    """The Go runner returns BLOBs as hex text; do the same with ours."""
    return [[v.hex() if isinstance(v, bytes) else v for v in row] for row in rows]


def test_go_vfs_and_ours_agree_on_every_table(replica, monkeypatch):
    for key, value in replica.env.items():
        monkeypatch.setenv(key, value)
    ours = connect(replica.url)
    tables = [r[0] for r in ours.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    statements = [f'SELECT * FROM "{t}" ORDER BY rowid' for t in tables] + QUERIES
    go_url = replica.litestream_url
    theirs = run_go_vfs(go_vfs_extension(), go_url, statements, env=replica.env, timeout=120)
    (txid,), = ours.execute("PRAGMA litestream_txid").fetchall()
    assert int(txid, 16) == replica.litestream_txids()[-1]
    for sql, result in zip(statements, theirs.results):
        assert _normalise(ours.execute(sql).fetchall()) == result.rows, sql
    truth = apsw.Connection(str(replica.restore()), flags=apsw.SQLITE_OPEN_READONLY)
    assert _normalise(truth.execute(QUERIES[0]).fetchall()) == theirs.results[-2].rows
