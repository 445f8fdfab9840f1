"""`litestream_log`, `litestream_diff` and `litestream_blame` as SQL on every connection: the
rows the Python API gives, in JSON whose values match `litestream restore` outputs (BLOBs
as hex), for the schema asked about."""

from __future__ import annotations

import json

import apsw
import pytest
from support.incidents import IncidentReplica
from support.replicas import ReplicaFixture, step

import litestream_vfs
from litestream_vfs.changes import change_log
from litestream_vfs.changes_sql import to_json
from litestream_vfs.connect import connect, replica_uri
from litestream_vfs.errors import ReplicaError
from litestream_vfs.timeparse import format_time, format_txid


@pytest.fixture(scope="module")
def conn(file_replica: ReplicaFixture):
    connection = connect(file_replica.url)
    yield connection
    connection.close()



def truth_rows(replica: ReplicaFixture, txid: int, sql: str) -> list[dict]:
    connection = apsw.Connection(str(replica.restore(txid)), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        cursor = connection.execute(sql)
        return [dict(zip([d[0] for d in cursor.getdescription()], row)) for row in cursor]
    finally:
        connection.close()


def test_sql_functions(file_replica: ReplicaFixture, conn) -> None:
    genre = step(file_replica, "insert genre")
    rows = conn.execute("SELECT change, key, before, after FROM litestream_diff('Genre', ?, ?)",
                        (format_txid(genre - 1), format_txid(genre))).fetchall()
    after, = truth_rows(file_replica, genre, "SELECT GenreId, Name FROM Genre ORDER BY GenreId DESC LIMIT 1")
    assert rows == [("added", json.dumps({"GenreId": after["GenreId"]}), None, json.dumps(after))]
    logged = conn.execute("SELECT txid, name, pages FROM litestream_log('Genre') WHERE name = 'Genre'").fetchall()
    assert (format_txid(genre), "Genre", 1) in logged


def test_sql_litestream_blame(incident_replica: IncidentReplica) -> None:
    conn = connect(incident_replica.url)
    rows = conn.execute("SELECT txid, change, row FROM litestream_blame('stock', ?)",
                        ('{"sku": "sku-010", "store": 2}',)).fetchall()
    expected = litestream_vfs.blame(incident_replica.url, "stock", '{"sku": "sku-010", "store": 2}')
    assert rows == [(format_txid(v.txid), v.change, None if v.row is None else json.dumps(v.row)) for v in expected]
    assert [c for _, c, _ in rows] == ["inserted", "updated", "deleted", "inserted", "updated"]


def test_log_is_the_change_log_one_row_per_state_and_btree(file_replica: ReplicaFixture, conn) -> None:
    cursor = conn.execute("SELECT * FROM litestream_log")
    assert [d[0] for d in cursor.getdescription()] == ["txid", "time", "level", "min_txid", "name", "pages"]
    rows = cursor.fetchall()
    assert rows == [(format_txid(c.txid), format_time(c.time), c.level, format_txid(c.min_txid), name, pages)
                    for c in change_log(file_replica.url) for name, pages in c.tables.items()]
    assert conn.execute("SELECT * FROM litestream_log(NULL)").fetchall() == rows


def test_diff_of_blobs_is_hex_like_the_restored_rows(file_replica: ReplicaFixture, conn) -> None:
    touched = step(file_replica, "touch bulk")
    rows = conn.execute("SELECT change, key, before, after FROM litestream_diff('bulk', ?, ?)",
                        (format_txid(touched - 1), format_txid(touched))).fetchall()
    query = "SELECT id, label, payload FROM bulk WHERE id IN (5, 1500, 2900) ORDER BY id"
    before, after = truth_rows(file_replica, touched - 1, query), truth_rows(file_replica, touched, query)
    assert len(after) == 3 and all(isinstance(row["payload"], bytes) for row in after)
    decoded = sorted(((change, json.loads(key), json.loads(old), json.loads(new)) for change, key, old, new in rows),
                     key=lambda row: row[1]["id"])
    assert decoded == [("changed", {"id": b["id"]}, {**b, "payload": b["payload"].hex()},
                        {**a, "payload": a["payload"].hex()}) for b, a in zip(before, after)]


def test_to_json_is_the_cli_convention() -> None:
    assert to_json(None) is None
    assert to_json({"id": 7, "blob": b"\x00\xff", "none": None, "text": "Åse"}) == \
        '{"id": 7, "blob": "00ff", "none": null, "text": "\\u00c5se"}'


def test_a_schema_names_which_replica_to_read(file_replica: ReplicaFixture, conn, tmp_path) -> None:
    """Attached at an older TXID, the same replica's log is the same; a plain schema is refused by name."""
    first = file_replica.litestream_txids()[0]
    plain = tmp_path / "plain.db"
    apsw.Connection(str(plain)).close()
    conn.execute("ATTACH ? AS old", (replica_uri(file_replica.url, txid=format_txid(first)),))
    conn.execute(f"ATTACH 'file:{plain}?vfs=unix' AS plain")
    try:
        assert conn.execute("SELECT count(*) FROM litestream_log(NULL, 'old')").fetchone() == \
            conn.execute("SELECT count(*) FROM litestream_log").fetchone()
        with pytest.raises(ReplicaError, match="schema 'plain' is not opened with the litestream VFS"):
            conn.execute("SELECT * FROM litestream_log(NULL, 'plain')").fetchall()
    finally:
        conn.execute("DETACH old")
        conn.execute("DETACH plain")
