"""An opt-in local cache shared by processes and surviving restarts.

LTX files never change, so what we fetched once is valid forever: the page
index of each file (its header and tail bytes) and the compressed frames we
read. Frames are keyed by the file's identity (replica URL, level, name,
size and trailer checksum) and offset, so a replica deleted and re-created
at the same URL never shares them, and so are the files known to match their
file checksum (see verify.py); an index is keyed by what a listing tells
apart (URL, level, name, size) and its header is checked against the name
when it is used. Nothing is ever invalidated; the oldest entries are evicted
when the cache grows past its size. It is a SQLite database in WAL mode, so several processes (a
notebook and a dashboard, say) share it safely.
"""

from __future__ import annotations

import os
import threading
from typing import Iterable

import apsw

DEFAULT_DISK_BYTES = 1024 * 1024 * 1024
FILE_NAME = "litestream-vfs-cache.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(file TEXT PRIMARY KEY, head BLOB NOT NULL, tail BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS verified(file TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS frames(file TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL,
                                  UNIQUE(file, offset));
"""
#: Check the size (and evict) after this many bytes were added by this process.
_CHECK_EVERY = 16 * 1024 * 1024


class DiskCache:
    """Header+tail bytes and raw frames of LTX files, in one SQLite file under `directory`."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_DISK_BYTES) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, FILE_NAME)
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[apsw.Connection] = []
        self._added = 0
        with self._db() as db:
            db.execute(_SCHEMA)

    def _db(self) -> apsw.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = apsw.Connection(self.path, vfs="unix" if "unix" in apsw.vfs_names() else "")
            db.set_busy_timeout(10_000)
            db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def close(self) -> None:
        """Close every thread's connection (a later use opens a new one)."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for db in connections:
            db.close()

    def get_meta(self, file: str) -> tuple[bytes, bytes] | None:
        row = self._db().execute("SELECT head, tail FROM meta WHERE file = ?", (file,)).fetchone()
        return (bytes(row[0]), bytes(row[1])) if row else None

    def put_meta(self, file: str, head: bytes, tail: bytes) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?, ?)", (file, head, tail))
        self._grew(len(head) + len(tail))

    def is_verified(self, file: str) -> bool:
        """Whether a file (key naming its size and checksum) once matched its file checksum."""
        return self._db().execute("SELECT 1 FROM verified WHERE file = ?", (file,)).fetchone() is not None

    def put_verified(self, file: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO verified VALUES (?)", (file,))

    def get_frames_between(self, file: str, start: int, end: int) -> list[tuple[int, bytes]]:
        """Every cached frame of `file` starting in [start, end), in file order."""
        return [(offset, bytes(data)) for offset, data in self._db().execute(
            "SELECT offset, data FROM frames WHERE file = ? AND offset >= ? AND offset < ? ORDER BY offset",
            (file, start, end))]

    def put_frames(self, file: str, frames: Iterable[tuple[int, bytes]]) -> None:
        rows = [(file, offset, data) for offset, data in frames]
        if not rows:
            return
        with self._db() as db:
            db.executemany("INSERT OR IGNORE INTO frames VALUES (?, ?, ?)", rows)
        self._grew(sum(len(r[2]) for r in rows))

    def _grew(self, amount: int) -> None:
        with self._lock:
            self._added += amount
            if self._added < _CHECK_EVERY:
                return
            self._added = 0
        self.evict()

    def used_bytes(self) -> int:
        db = self._db()
        (pages,), = db.execute("PRAGMA page_count").fetchall()
        (free,), = db.execute("PRAGMA freelist_count").fetchall()
        (size,), = db.execute("PRAGMA page_size").fetchall()
        return (pages - free) * size

    def evict(self) -> None:
        """Drop the oldest frames until the cache is at most 90% of its size."""
        db = self._db()
        while self.used_bytes() > self.max_bytes:
            target = self.used_bytes() - int(self.max_bytes * 0.9)
            with db:
                db.execute("""DELETE FROM frames WHERE rowid IN (
                                SELECT rowid FROM frames ORDER BY rowid
                                LIMIT (SELECT CAST(max(1, ? / max(1, avg(length(data)))) AS INTEGER)
                                       FROM frames))""", (target,))
            if not db.execute("SELECT 1 FROM frames LIMIT 1").fetchone():
                break
