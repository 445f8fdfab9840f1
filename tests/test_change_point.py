"""`bisect` finds the known change point of several queries within the evaluation bound."""

from __future__ import annotations

import math

import apsw
import pytest
from support.incidents import IncidentReplica

import litestream_vfs
from litestream_vfs.change_point import bisect
from litestream_vfs.connect import open_replica


def truth(replica: IncidentReplica, txid: int, sql: str) -> list[dict]:
    conn = apsw.Connection(str(replica.restore(txid)), flags=apsw.SQLITE_OPEN_READONLY)
    conn.row_trace = lambda cursor, row: dict(zip((d[0] for d in cursor.getdescription()), row))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("start, sql, changed_at", [
    ("initial", "SELECT Name FROM Artist WHERE ArtistId = 50", "rename artist"),
    ("rename artist", "SELECT count(*) AS n FROM PlaylistTrack", "delete playlist track"),
    ("sell out", "SELECT qty, note FROM stock WHERE sku = 'sku-010' AND store = 2", "return stock"),
    ("create stock", "SELECT count(*) FROM stock WHERE store = 1 AND qty > 1000", "double store 1"),
    ("create stock", "SELECT count(*) FROM PlaylistTrack WHERE PlaylistId = 1", "delete playlist 1"),
    ("initial", "SELECT count(*) FROM Genre", None),
])
def test_bisect_finds_the_change_point(incident_replica: IncidentReplica, start: str, sql: str,
                                       changed_at: str | None) -> None:
    since = incident_replica.step(start)
    states = [t for t in open_replica(incident_replica.url).chains_for().states if t >= since]
    found = bisect(incident_replica.url, sql, since=since)
    assert found.evaluated <= math.ceil(math.log2(len(states))) + 2
    first = truth(incident_replica, states[0], sql)
    if changed_at is None:
        assert (found.txid, found.time, found.before, found.after) == (None, None, first, None)
        assert found.to_json()["txid"] is None
        return
    expected = next(t for t in states if truth(incident_replica, t, sql) != first)
    assert expected == incident_replica.step(changed_at)
    assert found.txid == expected
    assert found.before == truth(incident_replica, states[states.index(expected) - 1], sql) == first
    assert found.after == truth(incident_replica, expected, sql)
    assert set(found.to_json()) == {"txid", "time", "before", "after", "evaluated"}


def test_bisect_is_public_and_bounded_by_until(incident_replica: IncidentReplica) -> None:
    sql = "SELECT Name FROM Artist WHERE ArtistId = 50"
    until = incident_replica.step("delete artist") - 1
    found = litestream_vfs.bisect(incident_replica.url, sql, since=incident_replica.step("rename artist"),
                                  until=until)
    assert found.txid is None and found.before == [{"Name": "Metallica (renamed)"}]


def test_bisect_names_the_state_where_the_query_fails(incident_replica: IncidentReplica) -> None:
    with pytest.raises(apsw.SQLError, match="at TXID 0000000000000001 .*no such table: stock"):
        bisect(incident_replica.url, "SELECT count(*) FROM stock", since=incident_replica.step("initial"))


def test_a_lookup_is_placed_at_its_change_by_the_page_indexes(incident_replica: IncidentReplica) -> None:
    """The lookup reads one leaf path: the first file writing it is where the answer changed."""
    found = bisect(incident_replica.url, "SELECT qty FROM stock WHERE sku = 'sku-010' AND store = 2",
                   since=incident_replica.step("create stock"))
    assert found.txid == incident_replica.step("restock") and found.evaluated == 3
