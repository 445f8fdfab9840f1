"""The pages a query read at a state: the b-tree path to its rows, page 1 and the schema."""

from __future__ import annotations

import apsw
from support.incidents import IncidentReplica

from litestream_vfs.observed import ObservedConnection


def test_pages_read_are_the_tables_path_and_the_schema(incident_replica: IncidentReplica) -> None:
    txid = incident_replica.step("rename artist")
    truth = apsw.Connection(str(incident_replica.restore(txid)), flags=apsw.SQLITE_OPEN_READONLY)
    owners = dict(truth.execute("SELECT pageno, name FROM dbstat"))
    with ObservedConnection(incident_replica.url, txid) as observed:
        seen = observed.run(txid, "SELECT Name FROM Artist WHERE ArtistId = 50")
        assert seen.rows == [("Metallica (renamed)",)] and seen.columns == ("Name",)
        assert 1 in seen.pages and {owners.get(p) for p in seen.pages} <= {"sqlite_schema", "Artist"}
        assert "Artist" in {owners.get(p) for p in seen.pages}
        again = observed.run(incident_replica.step("delete artist"), "SELECT Name FROM Artist WHERE ArtistId = 50")
        assert again.rows == [] and again.state.txid == incident_replica.step("delete artist")
        assert {owners.get(p) for p in again.pages} >= {"Artist"}, "a new state is read again, not from SQLite's cache"


def test_moving_reads_the_last_querys_pages_in_one_round(incident_replica: IncidentReplica) -> None:
    from litestream_vfs.process import PROCESS

    sql = "SELECT Name FROM Artist WHERE ArtistId = 50"
    with ObservedConnection(incident_replica.url, incident_replica.step("restock")) as observed:
        observed.run(incident_replica.step("restock"), sql)
        PROCESS.cache.clear()
        observed.move(incident_replica.step("unrelated tracks"))
        observed.file.counters.reset()
        seen = observed.run(incident_replica.step("unrelated tracks"), sql)
        assert seen.rows == [("Metallica (renamed)",)]
        assert observed.file.counters.snapshot()["cache_misses"] == 0, "the query found its path already read"
