"""A replica for investigating incidents: known rows updated, deleted and re-inserted.

Three kinds of table, one known row each, every change at its own TXID: a
rowid table keyed by INTEGER PRIMARY KEY (Artist 50), a rowid table with a
composite key (PlaylistTrack (5, 3), rebuilt with a new column and new rowids
on the way) and a WITHOUT ROWID table (stock ('sku-010', 2)); a VACUUM in the
middle, after many PlaylistTrack rows with low rowids are deleted; unrelated changes in
between, some large enough to split b-tree pages. The same replica without
its level-0 files stands for a history where only compacted files remain.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .binaries import litestream_binary
from .replicas import DB_NAME, ReplicaLocation, replicate_config, replicate_steps, run_restore
from .workload import Step, _sql, _vacuum, prepare_database

LITESTREAM_VERSION = "0.5.17"
#: (table, key as users type it, SQL reading the row from a restored file).
KNOWN_ROWS = (
    ("Artist", "50", "SELECT * FROM Artist WHERE ArtistId = 50"),
    ("PlaylistTrack", '{"PlaylistId": 5, "TrackId": 3}', "SELECT * FROM PlaylistTrack WHERE PlaylistId = 5 AND TrackId = 3"),
    ("stock", '{"sku": "sku-010", "store": 2}', "SELECT * FROM stock WHERE sku = 'sku-010' AND store = 2"),
)


STEPS: tuple[Step, ...] = (
    Step("create stock", _sql(
        "CREATE TABLE stock(sku TEXT, store INTEGER, qty INTEGER, note TEXT, PRIMARY KEY (sku, store)) WITHOUT ROWID",
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 599)"
        " INSERT INTO stock SELECT printf('sku-%03d', i / 3), i % 3, i, 'initial stock ' || i FROM n")),
    Step("rename artist", _sql("UPDATE Artist SET Name = 'Metallica (renamed)' WHERE ArtistId = 50")),
    Step("restock", _sql("UPDATE stock SET qty = qty + 1 WHERE sku = 'sku-010' AND store = 2")),
    Step("unrelated tracks", _sql("UPDATE Track SET Milliseconds = Milliseconds + 1 WHERE AlbumId = 100")),
    Step("delete artist", _sql("DELETE FROM Artist WHERE ArtistId = 50")),
    Step("delete playlist track", _sql("DELETE FROM PlaylistTrack WHERE PlaylistId = 5 AND TrackId = 3")),
    Step("sell out", _sql("DELETE FROM stock WHERE sku = 'sku-010' AND store = 2")),
    Step("delete playlist 1", _sql("DELETE FROM PlaylistTrack WHERE PlaylistId = 1")),
    Step("vacuum", _vacuum),
    Step("reinsert artist", _sql("INSERT INTO Artist(ArtistId, Name) VALUES (50, 'Metallica')")),
    Step("reinsert playlist track", _sql("INSERT INTO PlaylistTrack(PlaylistId, TrackId) VALUES (5, 3)")),
    Step("return stock", _sql("INSERT INTO stock VALUES ('sku-010', 2, 99, 'returned')")),
    Step("rebuild playlist track", _sql(  # a migration adding a column: new rowids for every row
        "CREATE TABLE PlaylistTrack_new(PlaylistId INTEGER NOT NULL, TrackId INTEGER NOT NULL, note TEXT,"
        " PRIMARY KEY (PlaylistId, TrackId))",
        "INSERT INTO PlaylistTrack_new(PlaylistId, TrackId) SELECT PlaylistId, TrackId FROM PlaylistTrack"
        " ORDER BY TrackId DESC, PlaylistId",
        "DROP TABLE PlaylistTrack",
        "ALTER TABLE PlaylistTrack_new RENAME TO PlaylistTrack")),
    Step("note playlist track", _sql("UPDATE PlaylistTrack SET note = 'pinned' WHERE PlaylistId = 5 AND TrackId = 3")),
    Step("double store 1", _sql("UPDATE stock SET qty = qty * 2, note = note || ' (doubled)' WHERE store = 1")),
    Step("grow artists", _sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
        " INSERT INTO Artist(ArtistId, Name) SELECT 100000 + i, printf('%.200c', 'a') || i FROM n",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)"
        " INSERT INTO stock SELECT printf('sku-%03d', i), 2, i, printf('%.300c', 'n') FROM n WHERE true"
        " ON CONFLICT DO NOTHING")),
    Step("rename artist again", _sql("UPDATE Artist SET Name = 'Metallica (final)' WHERE ArtistId = 50")),
    Step("restock again", _sql("UPDATE stock SET qty = 7, note = 'recounted' WHERE sku = 'sku-010' AND store = 2")),
)


@dataclass(frozen=True)
class IncidentReplica:
    """A finished replica of the incident workload, and where ground truth comes from."""

    url: str  # a plain directory
    db_path: Path
    step_txids: tuple[tuple[str, int], ...]
    binary: Path
    workdir: Path

    def step(self, name: str) -> int:
        return dict(self.step_txids)[name]

    def restore(self, txid: int) -> Path:
        """The state as the real `litestream restore -txid` rebuilds it (cached per TXID)."""
        path = self.workdir / f"truth-{txid:016x}.db"
        if not path.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            run_restore(self.binary, f"file://{self.url}", path, {}, txid)
        return path

    def without_level0(self) -> IncidentReplica:
        """A copy holding only the compacted files (and snapshots): Litestream's L0 retention expired."""
        target = self.workdir / "compacted-only"
        if not target.exists():
            shutil.copytree(self.url, target, ignore=lambda folder, names: names if folder.endswith("/ltx/0") else [])
        return IncidentReplica(str(target), self.db_path, self.step_txids, self.binary, self.workdir / "c")


def build_incident_replica(workdir: Path) -> IncidentReplica:
    """Run the incident steps under real `litestream replicate` (L1 and L2 compaction on)."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / DB_NAME
    prepare_database(db_path)
    replica_dir = workdir / "replica"
    location = ReplicaLocation("file", str(replica_dir))
    binary = litestream_binary(LITESTREAM_VERSION)
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, f"file://{replica_dir}"))
    steps = replicate_steps(binary, config, {}, location.newest_txid, db_path, STEPS, str(replica_dir),
                            compacted_levels=(1, 2))
    return IncidentReplica(str(replica_dir), db_path, steps, binary, workdir)
