"""Registry: which replica serves a key, shared while used, a few kept warm, then stopped."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from litestream_vfs.connect import connect
from litestream_vfs.executors import Executors
from litestream_vfs.pagecache import PageCache
from litestream_vfs.poller import Poller
from litestream_vfs.process import PROCESS
from litestream_vfs.registry import WARM_KEPT, Entry, Registry, replica_key
from litestream_vfs.replica import Replica
from litestream_vfs.storage.file import FileStorage
from litestream_vfs.vfs import file_of
from support.threads import litestream_threads


@pytest.fixture
def executors():
    pools = Executors(io=1, tasks=1, prefetch=1)
    yield pools
    assert pools.shutdown(5) == []


def links_to(url: str, where: Path, count: int) -> list[str]:
    """`count` URLs of the same real replica (symlinks), each a replica of its own to the registry."""
    for i in range(count):
        os.symlink(url, where / f"replica-{i}")
    return [str(where / f"replica-{i}") for i in range(count)]


def maker(url: str, executors: Executors):
    def make() -> Entry:
        replica = Replica(FileStorage(url), PageCache(1 << 20), executors)
        return Entry(replica, Poller(replica, 60.0))
    return make


def test_users_share_one_entry_and_the_oldest_warm_one_is_stopped(file_replica, tmp_path, executors):
    registry = Registry()
    urls = links_to(file_replica.url, tmp_path, WARM_KEPT + 1)
    first_key = replica_key(urls[0], None, None)
    assert registry.use(first_key) is None  # nothing made without a maker
    first = registry.use(first_key, maker(urls[0], executors))
    assert registry.use(first_key, lambda: pytest.fail("made twice")) is first and first.users == 2
    assert first.replica.latest().txid == file_replica.step_txids[-1][1]
    first.poller.follow()  # its thread runs until the entry is stopped
    registry.release(first.replica)
    registry.release(first.replica)
    assert first.users == 0 and registry.entries() == [first]  # unused, kept warm
    for url in urls[1:]:
        entry = registry.use(replica_key(url, None, None), maker(url, executors))
        registry.release(entry.replica)
    assert first not in registry.entries() and len(registry.entries()) == WARM_KEPT
    assert f"litestream-poll {first.replica.storage.url}" not in litestream_threads()
    registry.release(first.replica)  # a release after the entry left is ignored
    for entry in registry.clear():
        entry.replica.close()
    assert registry.entries() == []


def test_lend_serves_a_key_for_the_block_and_an_open_entry_wins(file_replica, tmp_path, executors):
    registry = Registry()
    url, = links_to(file_replica.url, tmp_path, 1)
    key = replica_key(url, None, None)
    lent = maker(url, executors)()
    with registry.lend(key, lambda: lent) as served:
        assert served is lent.replica and registry.use(key) is lent
        registry.release(lent.replica)
    assert registry.entries() == [] and served.latest().txid == file_replica.step_txids[-1][1]  # not closed
    opened = registry.use(key, maker(url, executors))
    with registry.lend(key, lambda: pytest.fail("an open entry must win")) as served:
        assert served is opened.replica
    assert registry.entries() == [opened]


def test_replica_key_names_the_database_and_the_absolute_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert replica_key("s3://bucket/dbs/", "app.db", None) == ("s3://bucket/dbs/app.db", None)
    assert replica_key("s3://bucket/app.db", "ignored.db", "~/cache") == ("s3://bucket/app.db",
                                                                          str(tmp_path / "cache"))


def test_per_connection_cache_dir_stays_with_that_connection(file_replica, tmp_path):
    cached = connect(file_replica.url, params={"cache_dir": str(tmp_path / "cache")})
    plain = connect(file_replica.url)
    assert file_of(cached).replica.disk is not None
    assert file_of(plain).replica.disk is None  # the other connection did not change this one
    assert cached.execute("SELECT count(*) FROM Artist").fetchall() == plain.execute(
        "SELECT count(*) FROM Artist").fetchall()
    cached.close()
    plain.close()


def test_replicas_are_released_when_their_last_connection_closes(file_replica, tmp_path):
    """Many replicas opened in turn: only the ones in use and a few warm ones stay registered."""
    PROCESS.close()
    links = links_to(file_replica.url, tmp_path, WARM_KEPT + 12)
    held = connect(links[0])
    for link in links[1:]:
        connection = connect(link)
        assert connection.execute("SELECT count(*) FROM Genre").fetchall()
        connection.close()
    assert len(PROCESS.replicas()) <= WARM_KEPT + 1
    assert file_of(held).replica in PROCESS.replicas()  # in use: never released
    assert held.execute("SELECT count(*) FROM Genre").fetchall()
    held.close()
    deadline = time.monotonic() + 5  # a poller ends as soon as nobody follows its replica
    while any("replica-" in name for name in litestream_threads()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [name for name in litestream_threads() if "replica-" in name]
