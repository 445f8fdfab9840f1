"""Travelling to a state newer than the process last listed: the state exists in the
replica, so setting its TXID or a time after it must reach it, whether or not a
connection of the process follows `latest` (DESIGN.md: only a TXID outside the
retained history is an error)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from litestream_vfs.connect import connect
from support.live import live_replication
from support.replicas import ReplicaLocation
from support.workload import open_writer


def wait_for_new_state(location: ReplicaLocation, after: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while (newest := location.newest_txid(0)) <= after:
        assert time.monotonic() < deadline, f"no L0 file after TXID {after:016x}"
        time.sleep(0.05)
    return newest


@pytest.fixture
def pinned_then_newer(tmp_path):
    """(a connection pinned at the first state, the newer TXID committed after it opened)."""
    with live_replication(tmp_path) as live:
        location = ReplicaLocation("file", str(live.replica_dir))
        writer = open_writer(live.db_path)
        writer.execute("CREATE TABLE ticks(n INTEGER PRIMARY KEY)")
        first = wait_for_new_state(location, 0)
        reader = connect(str(live.replica_dir), txid=f"{first:016x}")
        assert reader.execute("SELECT count(*) FROM sqlite_master").fetchall()
        writer.execute("INSERT INTO ticks VALUES (1)")
        newer = wait_for_new_state(location, first)
        time.sleep(1.5)  # well past a poll interval: a follower would have seen it by now
        yield reader, newer
        reader.close()
        writer.close()


def test_travel_by_txid_to_a_state_committed_after_the_first_listing(pinned_then_newer):
    """A TXID beyond the process's last listing lists the replica again before it is refused."""
    reader, newer = pinned_then_newer
    reader.execute(f"PRAGMA litestream_txid = '{newer:016x}'")
    assert reader.execute("SELECT count(*) FROM ticks").fetchall() == [(1,)]


def test_travel_by_time_to_a_state_committed_after_the_first_listing(pinned_then_newer):
    """A time after the process's last listing lists the replica again before it is resolved."""
    reader, newer = pinned_then_newer
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    reader.execute(f"PRAGMA litestream_time = '{now}'")
    with reader:
        assert reader.execute("PRAGMA litestream_txid").fetchall() == [(f"{newer:016x}",)]
        assert reader.execute("SELECT count(*) FROM ticks").fetchall() == [(1,)]
