"""The VFS over synthetic replicas: page sizes, time travel, the lock page.

Real-Litestream replicas are covered in test_real_replicas.py and test_vfs.py (page 1,
read-only opens); these cases need shapes Litestream would take long to produce
(page sizes, > 1 GiB databases).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote

import apsw
import pytest

import litestream_vfs
from litestream_vfs import ltx
from litestream_vfs.timeparse import format_time
from litestream_vfs.vfs import file_of
from support.threads import run_threads
from support.synthetic import sqlite_states, write_replica

STATEMENTS = [
    "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT); CREATE INDEX t_body ON t(body)",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
    "INSERT INTO t(body) SELECT printf('row %d %s', i, hex(randomblob(40))) FROM n",
    "UPDATE t SET body = body || ' changed' WHERE id % 7 = 0",
    "DELETE FROM t WHERE id > 200",
    "CREATE TABLE u(x); INSERT INTO u VALUES (1), (2), (3)",
]


def connect(root: Path, **params: str) -> apsw.Connection:
    extra = "".join(f"&{k}={quote(v, safe='')}" for k, v in params.items())
    return apsw.Connection(f"file:synthetic.db?vfs=litestream&replica={quote(str(root), safe='')}{extra}",
                           flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def rows(connection: apsw.Connection, schema: str = "main") -> list:
    tables = [r[0] for r in connection.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table' ORDER BY name")]
    return [(t, connection.execute(f"SELECT * FROM {schema}.{t} ORDER BY rowid").fetchall()) for t in tables]


def expected_rows(tmp_path: Path, pages: dict[int, bytes], page_size: int) -> list:
    path = tmp_path / f"expected-{hashlib.sha1(b''.join(pages[p] for p in sorted(pages))).hexdigest()}.db"
    if not path.exists():
        path.write_bytes(b"".join(pages[p] for p in sorted(pages)))
    return rows(apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY))


@pytest.mark.parametrize("flavour", ["block", "frame"])
@pytest.mark.parametrize("page_size", [512, 4096, 65536])
def test_every_state_reads_exactly_like_the_source(tmp_path, page_size, flavour):
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, page_size, STATEMENTS),
                            page_size, flavour=flavour)
    connection = connect(replica.root)
    for txid, pages in replica.states.items():
        connection.execute(f"PRAGMA litestream_txid='{txid:016x}'")
        assert rows(connection) == expected_rows(tmp_path, pages, page_size)
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA page_size").fetchall() == [(page_size,)]


def test_time_rule_is_at_or_before(tmp_path):
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, 4096, STATEMENTS), 4096)
    connection = connect(replica.root)
    for txid, ms in replica.timestamps_ms.items():
        exact = format_time(ltx.Header(2, 4096, 1, 1, 1, ms).timestamp)
        just_before_next = format_time(ltx.Header(2, 4096, 1, 1, 1, ms + 999).timestamp)
        for text in (exact, just_before_next):
            connection.execute(f"PRAGMA litestream_time='{text}'")
            assert connection.execute("PRAGMA litestream_txid").fetchall() == [(f"{txid:016x}",)]
            assert connection.execute("PRAGMA litestream_time").fetchall() == [(exact,)]
    first = min(replica.timestamps_ms.values())
    too_early = format_time(ltx.Header(2, 4096, 1, 1, 1, first - 1).timestamp)
    with pytest.raises(apsw.SQLError, match="available states: TXID 0000000000000001"):
        connection.execute(f"PRAGMA litestream_time='{too_early}'")


def test_uri_parameters_open_a_past_state_and_attach_diffs_across_time(tmp_path):
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, 4096, STATEMENTS), 4096)
    connection = connect(replica.root)
    connection.execute(f"ATTACH 'file:synthetic.db?vfs=litestream&replica={quote(str(replica.root), safe='')}"
                       f"&litestream_txid=0000000000000002' AS past")
    assert connection.execute("SELECT count(*) FROM main.t").fetchall() == [(200,)]
    assert connection.execute("SELECT count(*) FROM past.t").fetchall() == [(300,)]
    changed = connection.execute(
        "SELECT count(*) FROM main.t JOIN past.t USING (id) WHERE main.t.body <> past.t.body").fetchall()
    assert changed == [(len([i for i in range(1, 201) if i % 7 == 0]),)]
    assert connection.execute("PRAGMA past.litestream_txid").fetchall() == [("0000000000000002",)]
    assert connect(replica.root, litestream_txid="3").execute("PRAGMA litestream_txid").fetchall() == \
        [("0000000000000003",)]


def test_lock_page_reads_as_zeros_and_pages_after_it_are_served(tmp_path):
    """A database past 1 GiB: the page at byte 2^30 is never stored; later pages are."""
    page_size = 65536
    lock = ltx.lock_page(page_size)
    source = sqlite_states(tmp_path, page_size, ["CREATE TABLE t(x)"])[0]
    marker = {lock - 1: b"\xaa" * page_size, lock + 1: b"\xbb" * page_size, lock + 2: b"\xcc" * page_size}
    zero = bytes(page_size)  # one object for every empty page: a snapshot holds all of them
    everything = {p: zero for p in range(1, lock + 3) if p != lock}
    replica = write_replica(tmp_path / "replica", [{**everything, **source, **marker}], page_size)
    connection = connect(replica.root)
    connection.execute("SELECT count(*) FROM t").fetchall()
    handle = file_of(connection)
    assert handle.xFileSize() == (lock + 2) * page_size
    assert handle.xRead(page_size, (lock - 2) * page_size) == marker[lock - 1]
    assert handle.xRead(page_size, (lock - 1) * page_size) == bytes(page_size)
    assert handle.xRead(2 * page_size, lock * page_size) == marker[lock + 1] + marker[lock + 2]
    # a page never written (between the schema pages and the markers) reads as zeros too
    assert handle.xRead(page_size, 10 * page_size) == bytes(page_size)


def test_missing_replica_and_bad_inputs_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("LITESTREAM_REPLICA_URL", raising=False)
    with pytest.raises(litestream_vfs.ReplicaError, match="no replica for"):
        apsw.Connection("file:x.db?vfs=litestream", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    with pytest.raises(litestream_vfs.ReplicaError, match="no replica at"):
        connect(tmp_path / "nothing-here")
    (tmp_path / "empty" / "ltx" / "0").mkdir(parents=True)
    with pytest.raises(litestream_vfs.ReplicaError, match="empty"):
        connect(tmp_path / "empty")
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, 4096, STATEMENTS), 4096)
    with pytest.raises(litestream_vfs.TimeParseError, match="blorp"):
        connect(replica.root, litestream_time="blorp")
    with pytest.raises(litestream_vfs.OutOfHistory, match="available states"):
        connect(replica.root, litestream_txid="ff")
    connection = connect(replica.root)
    with pytest.raises(apsw.SQLError, match="cannot understand the time 'yesterdayish'"):
        connection.execute("PRAGMA litestream_time='yesterdayish'")


def test_replica_from_environment_is_read_at_open(tmp_path, monkeypatch):
    """The Go VFS reads LITESTREAM_REPLICA_URL once at process start; we read it per open."""
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, 4096, STATEMENTS), 4096)
    monkeypatch.setenv("LITESTREAM_REPLICA_URL", str(replica.root))
    connection = apsw.Connection("file:anything.db?vfs=litestream",
                                 flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    assert connection.execute("SELECT count(*) FROM u").fetchall() == [(3,)]


def test_register_mapping_and_dotenv(tmp_path, monkeypatch):
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, 4096, STATEMENTS), 4096)
    monkeypatch.delenv("LITESTREAM_REPLICA_URL", raising=False)
    litestream_vfs.register(replicas={"mapped.db": str(replica.root)})
    try:
        connection = apsw.Connection("file:mapped.db?vfs=litestream",
                                     flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        assert connection.execute("SELECT count(*) FROM u").fetchall() == [(3,)]
    finally:
        litestream_vfs.register(replicas={})
    dotenv = pytest.importorskip("dotenv")
    env_file = tmp_path / ".env"
    env_file.write_text(f"LITESTREAM_REPLICA_URL={replica.root}\n")
    dotenv.load_dotenv(env_file, override=True)
    try:
        connection = apsw.Connection("file:late.db?vfs=litestream",
                                     flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        assert connection.execute("SELECT count(*) FROM u").fetchall() == [(3,)]
    finally:
        monkeypatch.delenv("LITESTREAM_REPLICA_URL", raising=False)


def test_directory_of_replicas_picks_by_file_name(tmp_path, monkeypatch):
    states = sqlite_states(tmp_path, 4096, STATEMENTS)
    write_replica(tmp_path / "dbs" / "orders.db", states[:2], 4096)
    write_replica(tmp_path / "dbs" / "users.db", states, 4096)
    monkeypatch.setenv("LITESTREAM_REPLICA_URL", str(tmp_path / "dbs") + "/")
    orders = apsw.Connection("file:orders.db?vfs=litestream", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    users = apsw.Connection("file:users.db?vfs=litestream", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    assert orders.execute("SELECT count(*) FROM t").fetchall() == [(300,)]
    assert users.execute("SELECT count(*) FROM u").fetchall() == [(3,)]


def test_newest_file_still_uploading_is_skipped_not_trusted(tmp_path):
    """A store without atomic uploads can list a half-written newest file."""
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, 4096, STATEMENTS), 4096)
    newest = max(replica.states)
    path = replica.root / "ltx" / "0" / f"{newest:016x}-{newest:016x}.ltx"
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    connection = connect(replica.root)
    assert connection.execute("PRAGMA litestream_txid").fetchall() == [(f"{newest - 1:016x}",)]
    assert rows(connection) == expected_rows(tmp_path, dict(replica.states[newest - 1]), 4096)
    with pytest.raises(apsw.SQLError, match=f"{newest:016x}"):
        connection.execute(f"PRAGMA litestream_txid='{newest:016x}'")
    path.write_bytes(whole)  # the upload finished: the next poll and transaction see it
    assert file_of(connection).replica.poll()
    assert rows(connection) == expected_rows(tmp_path, dict(replica.states[newest]), 4096)


def test_threads_reading_different_states_concurrently(tmp_path):
    replica = write_replica(tmp_path / "replica", sqlite_states(tmp_path, 4096, STATEMENTS), 4096)
    expected = {txid: expected_rows(tmp_path, dict(pages), 4096) for txid, pages in replica.states.items()}

    def reader(txid: int) -> list[str]:
        connection = connect(replica.root, litestream_txid=f"{txid:x}")
        try:
            return [f"TXID {txid}" for _ in range(20) if rows(connection) != expected[txid]]
        finally:
            connection.close()

    results = run_threads([lambda txid=txid: reader(txid) for txid in replica.states for _ in range(2)])
    assert [failure for found in results for failure in found] == []


@pytest.mark.parametrize("url, message", [
    ("ftp://host/db", "ftp"),
    ("s3:///db", "bucket"),
    ("s3://bucket/../db", ".."),
])
def test_bad_replica_urls_name_the_url(url, message):
    with pytest.raises(litestream_vfs.ReplicaError, match=re.escape(message)):
        apsw.Connection(f"file:x.db?vfs=litestream&replica={quote(url, safe='')}",
                        flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
