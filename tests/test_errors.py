"""The exception hierarchy callers rely on, shown on real failures of a real replica:
`except LTXError` catches a checksum failure (restore retries without the file),
`except ReplicaError` catches a TXID out of history and a missing replica,
`except StorageError` a vanished object, and `except LitestreamVFSError` all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

import litestream_vfs
from litestream_vfs import errors
from litestream_vfs.connect import open_replica
from litestream_vfs.errors import (ChecksumMismatch, LitestreamVFSError, LTXError, ObjectNotFound, OutOfHistory,
                                   ReplicaError, StaleReplica, StorageError, TimeParseError)
from litestream_vfs.ltx import decode_file
from litestream_vfs.storage import open_storage
from litestream_vfs.timeparse import parse_time


def test_every_error_is_a_litestream_vfs_error_and_exported_by_the_package():
    kinds = [ChecksumMismatch, LTXError, ObjectNotFound, OutOfHistory, ReplicaError, StaleReplica,
             StorageError, TimeParseError]
    assert {k for k in vars(errors).values() if isinstance(k, type) and issubclass(k, Exception)} == \
        {LitestreamVFSError, *kinds}
    for kind in kinds:
        assert issubclass(kind, LitestreamVFSError)
        assert getattr(litestream_vfs, kind.__name__) is kind


def test_a_checksum_failure_is_an_ltx_error_naming_the_file(file_replica, tmp_path):
    path = max(Path(file_replica.url).rglob("*.ltx"), key=lambda p: p.stat().st_size)
    damaged = bytearray(path.read_bytes())
    damaged[39] ^= 1  # the header's timestamp: only the file checksum covers it
    with pytest.raises(LTXError) as info:
        decode_file(bytes(damaged), path.name)
    assert type(info.value) is ChecksumMismatch
    assert info.value.name == path.name and str(info.value) == f"{path.name}: {info.value.problem}"
    assert not isinstance(info.value, (StorageError, ReplicaError))


def test_a_txid_out_of_history_is_a_replica_error(file_replica):
    replica = open_replica(file_replica.url)
    beyond = file_replica.litestream_txids()[-1] + 1000
    with pytest.raises(ReplicaError) as info:
        replica.state(beyond)
    assert type(info.value) is OutOfHistory and f"{beyond:016x}" in str(info.value)


def test_a_missing_replica_is_a_replica_error(tmp_path):
    with pytest.raises(ReplicaError) as info:
        open_replica(str(tmp_path / "gone"))
    assert type(info.value) is ReplicaError and str(tmp_path / "gone") in str(info.value)


def test_a_vanished_object_is_a_storage_error_but_not_a_replica_error(replica_copy):
    storage = open_storage(str(replica_copy))
    obj = storage.list_files()[0]
    (replica_copy / "ltx" / str(obj.level) / obj.name).unlink()
    with pytest.raises(StorageError) as info:
        storage.read_range(obj, 0, 10)
    assert type(info.value) is ObjectNotFound and obj.name in str(info.value)
    assert not isinstance(info.value, ReplicaError)


def test_a_bad_time_is_its_own_kind():
    with pytest.raises(LitestreamVFSError) as info:
        parse_time("blorp o'clock")
    assert type(info.value) is TimeParseError and "blorp" in str(info.value)
