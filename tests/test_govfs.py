"""Litestream's Go VFS, run in a child process, reads a replica the real `litestream` wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import apsw
import pytest

from support.binaries import go_vfs_extension, litestream_binary
from support.govfs import GoVfsError, run_go_vfs
from support.workload import chinook_source

QUERIES = ["select count(*) from Track", "select max(GenreId), count(*) from Genre"]


def _replicate_once(db: Path, replica_url: str) -> None:
    """One `litestream replicate -once` pass: syncs the WAL to the replica and exits."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    done = subprocess.run([str(litestream_binary("0.5.17")), "replicate", "-once",
                           str(db), replica_url],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"litestream replicate {db} -> {replica_url}: {done.stderr}"


def _rows(db: Path, sql: str) -> list[list[object]]:
    return [list(row) for row in apsw.Connection(str(db)).execute(sql)]


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(source DB, replica dir): a snapshot of Chinook, then one more commit on top."""
    root = tmp_path_factory.mktemp("govfs")
    db = root / "chinook.db"
    shutil.copyfile(chinook_source(), db)
    replica_dir = root / "replica"
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA journal_mode=wal")
    _replicate_once(db, replica_dir.as_uri())
    conn.execute("INSERT INTO Genre(GenreId, Name) "
                 "VALUES ((SELECT max(GenreId) + 1 FROM Genre), 'Replicated later')")
    _replicate_once(db, replica_dir.as_uri())
    conn.close()
    return db, replica_dir


def test_go_vfs_reads_what_litestream_replicated(replica: tuple[Path, Path]) -> None:
    db, replica_dir = replica
    assert len(list(replica_dir.glob("ltx/0/*.ltx"))) == 2  # snapshot + the later commit
    run = run_go_vfs(go_vfs_extension(), replica_dir.as_uri(), QUERIES, timeout=60)
    assert [r.sql for r in run.results] == QUERIES
    assert [r.rows for r in run.results] == [_rows(db, sql) for sql in QUERIES]
    assert all(r.seconds >= 0 for r in run.results)


def test_go_vfs_blocks_on_an_empty_replica(tmp_path: Path) -> None:
    """The Go VFS never reports an empty replica: opening waits for a first
    LTX file, re-listing once a second, so only the timeout ends it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GoVfsError, match="did not finish within") as failure:
        run_go_vfs(go_vfs_extension(), empty.as_uri(), QUERIES[:1], timeout=3,
                   debug_log=True)
    assert "no backup files available yet" in str(failure.value)


def test_go_vfs_load_failure_is_reported(tmp_path: Path) -> None:
    """A bad URL makes the Go extension fail to load; often it logs why, sometimes the Go
    runtime takes the child process down (SIGSEGV) first: either way the runner says so."""
    with pytest.raises(GoVfsError, match=r"failed to create replica client|failed \(exit -11\)"):
        run_go_vfs(go_vfs_extension(), "nosuchscheme://bucket/db", QUERIES[:1], timeout=30)
