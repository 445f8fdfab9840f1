"""The poller records failures for max_lag and stats, and stops when asked."""

from __future__ import annotations

import shutil
import time

from litestream_vfs.connect import open_replica
from litestream_vfs.poller import Poller
from support.threads import wait_for


def test_failed_polls_are_recorded_and_the_thread_stops(file_replica, tmp_path):
    root = tmp_path / "replica"
    shutil.copytree(file_replica.url, root, ignore=shutil.ignore_patterns("*.tmp"))
    replica = open_replica(str(root))
    poller = Poller(replica, 0.05)
    poller.follow()
    wait_for(lambda: poller.polls >= 2, what="two polls")
    assert poller.errors == 0 and poller.last_error is None and poller.failing_since is None
    root.rename(tmp_path / "gone")
    wait_for(lambda: poller.errors >= 1, what="a failed poll")
    assert "no replica at" in str(poller.last_error) and poller.failing_since <= time.time()
    assert poller.stop(5) == []
    polls = poller.polls
    time.sleep(0.2)
    assert poller.polls == polls  # stopped: no more polls, even with a follower left
