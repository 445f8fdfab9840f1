"""The store interface's shared pieces: LTX file names, `LtxObject` identity, `Counters`.

Golden names come from a replica written by real Litestream: every name it
wrote parses back to the TXIDs `LtxObject.name` spells out again.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from litestream_vfs.storage.base import LEVELS, SNAPSHOT_LEVEL, Counters, LtxObject, parse_ltx_name


def test_every_name_litestream_wrote_round_trips(file_replica):
    names = sorted(path.name for path in Path(file_replica.url).rglob("*.ltx"))
    assert names, "the replica holds LTX files"
    for name in names:
        span = parse_ltx_name(name)
        assert span is not None, name
        assert LtxObject(0, span[0], span[1], 1).name == name


def test_levels_are_zero_to_the_snapshot_level(file_replica):
    levels = {int(path.parent.name) for path in Path(file_replica.url, "ltx").glob("*/*.ltx")}
    assert SNAPSHOT_LEVEL in levels and levels <= set(LEVELS)
    assert LEVELS == tuple(range(SNAPSHOT_LEVEL + 1))


@pytest.mark.parametrize("name, span", [
    ("0000000000000001-0000000000000001.ltx", (1, 1)),
    ("00000000000000ff-0000000000000abc.ltx", (0xFF, 0xABC)),
    ("7fffffffffffffff-ffffffffffffffff.ltx", (0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)),
])
def test_well_formed_names(name, span):
    assert parse_ltx_name(name) == span


@pytest.mark.parametrize("name", [
    "0000000000000000-0000000000000001.ltx",  # TXIDs start at 1
    "0000000000000002-0000000000000001.ltx",  # max below min
    "0000000000000001-0000000000000001.ltx.tmp",  # Litestream's upload in progress
    "0000000000000001-0000000000000001",
    "000000000000001-0000000000000001.ltx",  # 15 digits
    "00000000000000001-0000000000000001.ltx",  # 17 digits
    "00000000000000AB-00000000000000AB.ltx",  # Litestream writes lower case only
    "000000000000000g-000000000000000g.ltx",
    "0000000000000001_0000000000000001.ltx",
    "x0000000000000001-0000000000000001.ltx",
    "0000000000000001-0000000000000001.LTX",
    "0000000000000001-0000000000000001.ltx\n",  # `$` alone would accept a trailing newline
    "\n0000000000000001-0000000000000001.ltx",
    "",
])
def test_malformed_names_are_not_ltx_files(name):
    assert parse_ltx_name(name) is None


def test_name_and_str_say_where_the_file_is():
    obj = LtxObject(2, 0x10, 0xABC, 4096)
    assert obj.name == "0000000000000010-0000000000000abc.ltx"
    assert str(obj) == "L2/0000000000000010-0000000000000abc.ltx"


def test_size_is_part_of_identity_but_the_tag_is_not():
    """A file listed again with another size is another file; the store's tag (ETag, inode)
    rides along for caches that key by it, without splitting equal listings."""
    obj = LtxObject(0, 5, 5, 100, tag="inode-1")
    assert obj == LtxObject(0, 5, 5, 100, tag="inode-2")
    assert hash(obj) == hash(LtxObject(0, 5, 5, 100))
    assert obj != LtxObject(0, 5, 5, 101)
    assert obj != LtxObject(1, 5, 5, 100)
    assert len({obj, LtxObject(0, 5, 5, 100, tag="x"), LtxObject(0, 5, 5, 101)}) == 2
    assert "inode" not in repr(obj)
    with pytest.raises(AttributeError):
        obj.size = 1  # type: ignore[misc]


def test_objects_sort_by_level_then_txids():
    objs = [LtxObject(1, 1, 9, 10), LtxObject(0, 3, 3, 10), LtxObject(0, 1, 2, 10), LtxObject(9, 1, 9, 10)]
    assert sorted(objs) == [objs[2], objs[1], objs[0], objs[3]]


def test_counters_add_snapshot_reset():
    counters = Counters()
    counters.add(gets=2, bytes_fetched=100, network_seconds=0.5)
    counters.add(gets=1)
    snap = counters.snapshot()
    assert set(snap) == set(Counters.NAMES)
    assert (snap["gets"], snap["bytes_fetched"], snap["network_seconds"]) == (3, 100, 0.5)
    counters.reset()
    assert all(value == 0 for value in counters.snapshot().values())
    assert isinstance(counters.snapshot()["network_seconds"], float)
    assert isinstance(counters.snapshot()["gets"], int)


def test_counters_lose_no_update_across_threads():
    counters = Counters()

    def add_many() -> None:
        for _ in range(5000):
            counters.add(gets=1, bytes_fetched=3)

    threads = [threading.Thread(target=add_many, name=f"adder-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.snapshot()["gets"] == 20000 and counters.snapshot()["bytes_fetched"] == 60000

