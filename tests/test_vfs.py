"""The APSW glue on a replica written by real Litestream: page 1 as SQLite must see it, opens
that can never write, errors SQLite's caller can catch both ways, and `file_of`.

Reading every state row by row is covered in test_real_replicas.py; shapes Litestream
would take long to produce in test_vfs_synthetic.py.
"""

from __future__ import annotations

import struct

import apsw
import pytest

from litestream_vfs.connect import connect, open_replica
from litestream_vfs.errors import LTXError, OutOfHistory, ReplicaError
from litestream_vfs.vfs import file_of, patch_page1, sqlite_error

HEADER = 100


@pytest.fixture(scope="module")
def states(file_replica):
    """Every retained state of the real replica, oldest first."""
    replica = open_replica(file_replica.url)
    return [replica.state(txid) for txid in replica.chains_for().states]


def restored_page1(file_replica, state) -> bytes:
    """Page 1 as the real `litestream restore` writes it for `state` (a WAL-mode database)."""
    with open(file_replica.restore(state.txid), "rb") as restored:
        return restored.read(state.page_size)


def test_page1_becomes_rollback_mode_versioned_by_txid(file_replica, states):
    """Bytes 18/19 (WAL -> rollback), 24 and 92 (change counter, version-valid-for) and 28 (page
    count) change; every other byte is the restored page 1."""
    versions = set()
    for state in states:
        original = restored_page1(file_replica, state)
        assert original[18:20] == b"\x02\x02"  # Litestream ships a WAL-mode database
        patched = patch_page1(original, state)
        assert patched[18:20] == b"\x01\x01"
        version, = struct.unpack_from(">I", patched, 24)
        assert version == state.txid & 0xFFFFFFFF == struct.unpack_from(">I", patched, 92)[0]
        assert struct.unpack_from(">I", patched, 28)[0] == state.commit
        changed = {i for i in range(len(original)) if patched[i] != original[i]}
        assert changed <= {18, 19, *range(24, 32), *range(92, 96)}
        versions.add(version)
    assert len(versions) == len(states)


def test_a_new_generation_changes_the_version_only(file_replica, states):
    state = states[-1]
    original = restored_page1(file_replica, state)
    first, second = patch_page1(original, state, 0), patch_page1(original, state, 1)
    assert first[24:28] != second[24:28] and second[24:28] == second[92:96]
    assert first[:24] + first[28:92] + first[96:] == second[:24] + second[28:92] + second[96:]


def test_a_read_shorter_than_the_header_is_served_unpatched(file_replica, states):
    original = restored_page1(file_replica, states[-1])
    assert patch_page1(original[:50], states[-1]) == original[:50]


def test_the_connection_reads_the_patched_page1(file_replica, states):
    connection = connect(file_replica.url)
    try:
        handle = file_of(connection)
        for state in (states[0], states[-1]):
            connection.execute(f"PRAGMA litestream_txid='{state.txid:016x}'")
            assert handle.xRead(HEADER, 0) == patch_page1(restored_page1(file_replica, state), state)[:HEADER]
    finally:
        connection.close()


def test_an_open_for_writing_is_made_read_only(file_replica):
    connection = apsw.Connection(f"file:chinook.db?vfs=litestream&replica={file_replica.url}",
                                 flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI)
    try:
        assert connection.readonly("main")
        for sql in ("INSERT INTO Genre(Name) VALUES ('x')", "CREATE TABLE v(x)", "PRAGMA user_version=5"):
            with pytest.raises(apsw.ReadOnlyError):
                connection.execute(sql)
        # temporary files go to the default VFS: temp tables still work
        connection.execute("CREATE TEMP TABLE scratch AS SELECT GenreId FROM Genre")
        assert connection.execute("SELECT count(*) FROM scratch").fetchone() == \
            file_replica.truth(None, "SELECT count(*) FROM Genre")[0]
    finally:
        connection.close()


def test_our_errors_reach_sqlite_callers_as_both_kinds():
    """An `OutOfHistory` from inside the VFS is an `apsw.SQLError` too, same message and attributes."""
    error = OutOfHistory("txid 00000000000000ff is not retained; available states: 1-9")
    wrapped = sqlite_error(error, "chinook.db")
    assert isinstance(wrapped, apsw.SQLError) and isinstance(wrapped, OutOfHistory)
    assert isinstance(wrapped, ReplicaError) and str(wrapped) == str(error)
    assert type(sqlite_error(OutOfHistory("again"), "x")) is type(wrapped)  # one class per kind
    damaged = sqlite_error(LTXError("L0/0000000000000001-0000000000000001.ltx", "bad frame"), "chinook.db")
    assert isinstance(damaged, apsw.SQLError) and isinstance(damaged, LTXError)
    assert (damaged.name, damaged.problem) == ("L0/0000000000000001-0000000000000001.ltx", "bad frame")


def test_apsw_errors_pass_and_anything_else_is_an_io_error_naming_the_file():
    busy = apsw.BusyError("busy")
    assert sqlite_error(busy, "chinook.db") is busy
    unexpected = sqlite_error(KeyError(7), "chinook.db")
    assert isinstance(unexpected, apsw.IOError)
    assert str(unexpected) == "litestream: reading chinook.db failed: KeyError: 7"


def test_a_failed_open_is_catchable_as_sqlite_or_replica_error(tmp_path):
    missing = tmp_path / "no-replica"
    with pytest.raises(apsw.SQLError) as info:
        connect(str(missing))
    assert isinstance(info.value, ReplicaError) and str(missing) in str(info.value)


def test_file_of_refuses_a_schema_of_another_vfs(file_replica, tmp_path):
    apsw.Connection(str(tmp_path / "plain.db")).execute("CREATE TABLE t(x)").connection.close()
    connection = connect(file_replica.url, label="chinook.db")
    try:
        connection.execute(f"ATTACH 'file:{tmp_path / 'plain.db'}?vfs=unix' AS plain")
        assert file_of(connection).label == "chinook.db"
        with pytest.raises(ReplicaError, match="schema 'plain' is not opened with the litestream VFS"):
            file_of(connection, "plain")
    finally:
        connection.close()
