"""Local-directory replicas: listing, ranged reads, faults, counters."""

from __future__ import annotations

import os

import pytest

from litestream_vfs.errors import ObjectNotFound, ReplicaError, StorageError
from litestream_vfs.storage import Counters, LtxObject, open_storage
from litestream_vfs.storage.file import FileStorage

# (level, min, max) of synthetic objects; contents are derived from the name.
OBJECTS = [(0, 1, 1), (0, 2, 2), (0, 3, 3), (1, 1, 3), (2, 1, 3), (9, 1, 3), (3, 0x10, 0xABC)]


def body(level: int, lo: int, hi: int) -> bytes:
    return (f"L{level}:{lo:x}-{hi:x};" * (50 + lo)).encode()


@pytest.fixture
def replica(tmp_path):
    root = tmp_path / "replica"
    for level, lo, hi in OBJECTS:
        folder = root / "ltx" / str(level)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{lo:016x}-{hi:016x}.ltx").write_bytes(body(level, lo, hi))
    junk = root / "ltx" / "0"
    (junk / "notes.txt").write_text("junk")
    (junk / "0000000000000004-0000000000000004.ltx.tmp").write_bytes(b"partial")
    (junk / "0000000000000000-0000000000000001.ltx").write_bytes(b"txid zero is invalid")
    (junk / "0000000000000009-0000000000000008.ltx").write_bytes(b"max < min")
    (junk / "0000000000000001-0000000000000001.ltx\n").write_bytes(b"a second TXID 1 with a newline")
    (junk / "0000000000000005-0000000000000005.ltx").mkdir()  # a directory, not a file
    (root / "ltx" / "snapshots").mkdir()
    (root / "generations").mkdir()
    return root


def expected(levels=range(10)) -> list[LtxObject]:
    return sorted(LtxObject(level, lo, hi, len(body(level, lo, hi)))
                  for level, lo, hi in OBJECTS if level in levels)


def test_lists_ltx_files_and_ignores_junk(replica):
    storage = open_storage(str(replica))
    assert storage.list_files() == expected()
    assert storage.counters.lists == 10  # one directory listing per level


def test_lists_only_requested_levels(replica):
    storage = FileStorage(str(replica))
    assert storage.list_files((0, 9)) == expected((0, 9))
    assert storage.counters.lists == 2


def test_reads_ranges_and_whole_files(replica):
    counters = Counters()
    storage = open_storage("file://" + str(replica), counters=counters)
    objects = storage.list_files()
    for obj in objects:
        data = body(obj.level, obj.min_txid, obj.max_txid)
        assert storage.read_all(obj) == data
        assert storage.read_range(obj, 7, 13) == data[7:20]
    assert counters.gets == 2 * len(objects)
    assert counters.bytes_fetched == sum(o.size + 13 for o in objects)
    assert counters.network_seconds > 0


def test_missing_replica_directory(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ReplicaError, match=f"no replica at {missing}"):
        open_storage(str(missing)).list_files()


def test_replica_path_that_is_a_file(tmp_path):
    db = tmp_path / "app.db"
    db.write_bytes(b"SQLite format 3\0")
    with pytest.raises(ReplicaError, match="not a directory"):
        open_storage(str(db)).list_files()


def test_empty_replica_lists_nothing(tmp_path):
    assert open_storage(str(tmp_path)).list_files() == []


def test_truncated_file_is_a_storage_error_naming_it(replica):
    storage = open_storage(str(replica))
    obj = storage.list_files((1,))[0]
    path = replica / "ltx" / "1" / obj.name
    os.truncate(path, obj.size // 2)
    with pytest.raises(StorageError, match=f"{path} is truncated") as info:
        storage.read_all(obj)
    assert not isinstance(info.value, ObjectNotFound)


def test_vanished_file_is_object_not_found(replica):
    storage = open_storage(str(replica))
    obj = storage.list_files((2,))[0]
    path = replica / "ltx" / "2" / obj.name
    path.unlink()
    with pytest.raises(ObjectNotFound, match=str(path)):
        storage.read_range(obj, 0, 10)


def test_directory_of_replicas(tmp_path, replica):
    storage = open_storage(str(tmp_path) + "/", db_name="/elsewhere/replica")
    assert storage.list_files() == expected()
    assert "replica" in storage.url and "replica" in repr(storage)
