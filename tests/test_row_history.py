"""`blame` equals the versions found by restoring every state with `litestream restore`."""

from __future__ import annotations

import json
from typing import Any

import apsw
import pytest
from support.incidents import KNOWN_ROWS, IncidentReplica

from litestream_vfs.connect import open_replica
from litestream_vfs.row_history import RowHistory

Version = tuple[int, str, Any, int | None]
#: Steps that change only other tables: blame must not read the row there.
UNRELATED = {
    "Artist": ("restock", "unrelated tracks", "delete playlist track", "sell out", "delete playlist 1",
               "return stock", "note playlist track", "double store 1", "restock again"),
    "PlaylistTrack": ("rename artist", "restock", "unrelated tracks", "delete artist", "sell out", "reinsert artist",
                      "return stock", "double store 1", "rename artist again", "restock again"),
    "stock": ("rename artist", "unrelated tracks", "delete artist", "delete playlist track", "delete playlist 1",
              "reinsert artist", "reinsert playlist track", "note playlist track", "rename artist again"),
}


def restored_rows(replica: IncidentReplica, sql: str) -> dict[int, dict | None]:
    """The row at every restorable state, each state rebuilt by the real `litestream restore`."""
    states = open_replica(replica.url).chains_for().states
    out = {}
    for txid in states:
        conn = apsw.Connection(str(replica.restore(txid)), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            conn.row_trace = lambda cursor, row: dict(zip((d[0] for d in cursor.getdescription()), row))
            found = conn.execute(sql).fetchall()
            out[txid] = found[0] if found else None
        except apsw.SQLError:  # the table does not exist yet
            out[txid] = None
        finally:
            conn.close()
    return out


def expected_versions(rows: dict[int, dict | None]) -> list[Version]:
    states = list(rows)
    first = rows[states[0]]
    out: list[Version] = [(states[0], "present", first, None)] if first is not None else []
    for before, after in zip(states, states[1:]):
        old, new = rows[before], rows[after]
        if old != new:
            change = "inserted" if old is None else "deleted" if new is None else "updated"
            out.append((after, change, new, before + 1 if after - before > 1 else None))
    return out


@pytest.mark.parametrize("table, key, sql", KNOWN_ROWS, ids=[t for t, _, _ in KNOWN_ROWS])
def test_blame_equals_restored_history(incident_replica: IncidentReplica, table: str, key: str, sql: str) -> None:
    history = RowHistory(incident_replica.url, table, key)
    got = [(v.txid, v.change, v.row, v.since) for v in history.versions()]
    assert got == expected_versions(restored_rows(incident_replica, sql))
    assert {"deleted", "inserted", "updated"} <= {change for _, change, _, _ in got}
    skipped = {incident_replica.step(name) for name in UNRELATED[table]}
    assert not skipped & set(history.read_at), "states that only changed other tables were read"
    print(f"{table}: {len(got)} versions, {len(history.read_at)} of {len(history.states)} states read")


@pytest.mark.parametrize("table, key, sql", KNOWN_ROWS, ids=[t for t, _, _ in KNOWN_ROWS])
def test_blame_over_compacted_files_only(incident_replica: IncidentReplica, table: str, key: str, sql: str) -> None:
    compacted = incident_replica.without_level0()
    got = [(v.txid, v.change, v.row, v.since) for v in RowHistory(compacted.url, table, key).versions()]
    expected = expected_versions(restored_rows(compacted, sql))
    assert got == expected
    assert any(since is not None for *_, since in got), "some change is only known to lie in a range"


def test_blame_between_two_states(incident_replica: IncidentReplica) -> None:
    since, until = incident_replica.step("restock"), incident_replica.step("return stock")
    versions = RowHistory(incident_replica.url, "stock", {"sku": "sku-010", "store": 2},
                          since=since, until=until).versions()
    assert [(v.txid, v.change) for v in versions] == [
        (since, "present"), (incident_replica.step("sell out"), "deleted"), (until, "inserted")]
    assert versions[0].to_json()["row"] == {"sku": "sku-010", "store": 2, "qty": 33, "note": "initial stock 32"}
    assert json.loads(json.dumps([v.to_json() for v in versions]))[-1]["change"] == "inserted"


def test_blame_of_a_table_that_never_existed_names_it(incident_replica: IncidentReplica) -> None:
    from litestream_vfs.errors import ReplicaError

    with pytest.raises(ReplicaError, match="no table 'stocks' in any state"):
        RowHistory(incident_replica.url, "stocks", "1").versions()
    with pytest.raises(ReplicaError, match="no table 'stock' in any state from TXID 0000000000000001 to TXID "
                                           "0000000000000001"):
        RowHistory(incident_replica.url, "stock", '{"sku": "sku-010", "store": 2}',
                   until=incident_replica.step("initial")).versions()
    only = RowHistory(incident_replica.url, "Artist", 50, until=incident_replica.step("initial")).versions()
    assert [(v.change, v.row) for v in only] == [("present", {"ArtistId": 50, "Name": "Metallica"})]
