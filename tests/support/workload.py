"""A deterministic write workload over a WAL-mode copy of Chinook.

Each step is one SQLite transaction (VACUUM is its own), and the caller waits
for Litestream to ship a step before the next one starts, so every step ends
at its own TXID: tests can name a state ("after the schema change") and know
exactly what the database held there. The steps cover what a reader must get
right: inserts, updates, deletes, schema changes, growth well past the
original size, and a VACUUM that shrinks the database (`commit` decreases).
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import apsw

#: The sample database shipped with the repository (examples/data); the one place tests name it.
CHINOOK = Path(__file__).resolve().parents[2] / "examples" / "data" / "chinook.sqlite"
BULK_ROWS_PER_STEP = 1500
_PAYLOAD_RANDOM_BYTES = 1000  # incompressible half of each bulk payload


@dataclass(frozen=True)
class Step:
    """One named change to the database."""

    name: str
    apply: Callable[[apsw.Connection], None]


def chinook_source() -> Path:
    """The read-only sample database in the repository; LITESTREAM_VFS_CHINOOK overrides its path."""
    path = Path(os.environ.get("LITESTREAM_VFS_CHINOOK", CHINOOK))
    if not path.is_file():
        raise FileNotFoundError(f"sample database not found: {path} (set LITESTREAM_VFS_CHINOOK)")
    return path


def prepare_database(path: Path) -> None:
    """Copy Chinook to `path` and switch it to WAL mode, as Litestream requires."""
    shutil.copyfile(chinook_source(), path)
    conn = apsw.Connection(str(path))
    try:
        conn.pragma("journal_mode", "wal")
    finally:
        conn.close()


def open_writer(path: Path) -> apsw.Connection:
    """A writer that leaves checkpoints to Litestream (as its docs recommend)."""
    conn = apsw.Connection(str(path))
    conn.pragma("busy_timeout", 10000)
    conn.pragma("wal_autocheckpoint", 0)
    return conn


def run_workload(path: Path, after_step: Callable[[str], int],
                 steps: Sequence[Step] | None = None) -> tuple[tuple[str, int], ...]:
    """Apply every step (default: `STEPS`) to `path`; `after_step(name)` waits for it to ship
    and returns its TXID."""
    conn = open_writer(path)
    try:
        landed = []
        for step in STEPS if steps is None else steps:
            step.apply(conn)
            landed.append((step.name, after_step(step.name)))
        return tuple(landed)
    finally:
        conn.close()


def _payload(rng: random.Random, row: int) -> bytes:
    return rng.randbytes(_PAYLOAD_RANDOM_BYTES) + (f"row {row} " * 100).encode()[:1000]


def _sql(*statements: str) -> Callable[[apsw.Connection], None]:
    """A step that runs `statements` in one transaction."""
    def apply(conn: apsw.Connection) -> None:
        with conn:
            for statement in statements:
                conn.execute(statement)
    return apply


def _insert_bulk(first_id: int, seed: int) -> Callable[[apsw.Connection], None]:
    def apply(conn: apsw.Connection) -> None:
        rng = random.Random(seed)
        rows = ((i, f"label-{i % 97:02d}", _payload(rng, i))
                for i in range(first_id, first_id + BULK_ROWS_PER_STEP))
        with conn:
            conn.executemany("INSERT INTO bulk(id, label, payload) VALUES (?, ?, ?)", rows)
    return apply


def _insert_audit(conn: apsw.Connection) -> None:
    with conn:
        conn.executemany("INSERT INTO audit_log(at, note) VALUES (?, ?)",
                         ((f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z", f"event {i}")
                          for i in range(500)))


def _rewrite_bulk(conn: apsw.Connection) -> None:
    rng = random.Random(7)
    with conn:
        conn.executemany("UPDATE bulk SET payload = ? WHERE id = ?",
                         ((_payload(rng, i), i) for i in range(0, 2 * BULK_ROWS_PER_STEP, 10)))


def _vacuum(conn: apsw.Connection) -> None:
    conn.execute("VACUUM")


def _new_invoice(conn: apsw.Connection) -> None:
    with conn:
        conn.execute("INSERT INTO Invoice(InvoiceId, CustomerId, InvoiceDate, BillingCity, Total)"
                      " VALUES (1000, 1, '2024-02-01 00:00:00', 'Lisbon', 3.96)")
        conn.executemany("INSERT INTO InvoiceLine(InvoiceLineId, InvoiceId, TrackId, UnitPrice,"
                         " Quantity) VALUES (?, 1000, ?, 0.99, 1)",
                         ((10000 + i, 100 + i) for i in range(4)))


STEPS: tuple[Step, ...] = (
    Step("insert artists", _sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)"
        " INSERT INTO Artist(ArtistId, Name) SELECT 1000 + i, 'Workload Artist ' || i FROM n")),
    Step("reprice rock", _sql("UPDATE Track SET UnitPrice = 1.29 WHERE GenreId = 1")),
    Step("delete playlist", _sql("DELETE FROM PlaylistTrack WHERE PlaylistId = 1")),
    Step("create audit table", _sql(
        "CREATE TABLE audit_log(id INTEGER PRIMARY KEY, at TEXT NOT NULL, note TEXT)",
        "CREATE INDEX audit_log_at ON audit_log(at)")),
    Step("fill audit table", _insert_audit),
    Step("rewrite emails", _sql("UPDATE Customer SET Email = lower(FirstName) || '@example.com'")),
    Step("create bulk table", _sql(
        "CREATE TABLE bulk(id INTEGER PRIMARY KEY, label TEXT NOT NULL, payload BLOB NOT NULL)")),
    Step("grow bulk 1", _insert_bulk(0, seed=1)),
    Step("grow bulk 2", _insert_bulk(BULK_ROWS_PER_STEP, seed=2)),
    Step("index bulk", _sql("CREATE INDEX bulk_label ON bulk(label)")),
    Step("insert genre", _sql("INSERT INTO Genre(GenreId, Name) VALUES (100, 'Workload Genre')")),
    Step("touch bulk", _sql("UPDATE bulk SET label = 'touched' WHERE id IN (5, 1500, 2900)")),
    Step("rewrite bulk", _rewrite_bulk),
    Step("drop audit index", _sql("DROP INDEX audit_log_at")),
    Step("shrink bulk", _sql("DELETE FROM bulk WHERE id % 20 != 0")),
    Step("vacuum", _vacuum),
    Step("new invoice", _new_invoice),
    Step("delete artists", _sql("DELETE FROM Artist WHERE ArtistId > 1010")),
    Step("drop audit table", _sql("DROP TABLE audit_log")),
    Step("rename tracks", _sql("UPDATE Track SET Name = Name || ' (remastered)' WHERE AlbumId = 1")),
    Step("final insert", _sql("INSERT INTO MediaType(MediaTypeId, Name) VALUES (100, 'Workload')")),
)
