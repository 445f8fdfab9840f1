"""Fetching pages by ranges from a real large LTX file: read-ahead that fits the cache it fills."""

from __future__ import annotations

import pytest

import litestream_vfs
from litestream_vfs.connect import connect
from litestream_vfs.process import PROCESS
from litestream_vfs.vfs import file_of
from support.many_files import build_big_table


@pytest.fixture(scope="module")
def big_table(tmp_path_factory):
    return build_big_table(tmp_path_factory.mktemp("big"))


@pytest.mark.parametrize("cache_bytes", [1 << 20, 8 << 20, 256 << 20])
def test_a_scan_fetches_each_byte_about_once_whatever_the_cache_size(big_table, cache_bytes):
    """Issue 14, item 9: with a small page cache, read-ahead windows were evicted before the scan
    reached them and fetched again (270 MB for a 103 MB table at 8 MiB). Windows now fit the
    cache: a cold scan fetches about the table's size, in a bounded number of requests."""
    saved = PROCESS.settings.cache_bytes
    litestream_vfs.register(cache_size=cache_bytes)
    PROCESS.cache.clear()
    try:
        connection = connect(str(big_table), params={"verify": "ranges"})
        connection.execute("PRAGMA cache_size = -256")  # SQLite's own cache small too: the VFS serves the scan
        file = file_of(connection)
        largest = max(o.size for o in file.state.plan)
        file.counters.reset()
        (rows, total), = connection.execute("SELECT count(*), sum(length(payload)) FROM wide").fetchall()
        assert rows == 6000 and total == 6000 * 1000
        fetched = file.counters.snapshot()
        print(f"\ncache {cache_bytes >> 20} MiB: {fetched['gets']} GETs, {fetched['bytes_fetched']} bytes "
              f"for a {largest}-byte file")
        assert fetched["bytes_fetched"] <= 1.25 * largest
        assert fetched["gets"] <= 20 + 2 * largest // max(cache_bytes // 8, 64 * 1024)
        connection.close()
    finally:
        litestream_vfs.register(cache_size=saved)
