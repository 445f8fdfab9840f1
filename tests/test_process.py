"""The process registry: lifecycle, settings that reach running pollers, per-connection options."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import litestream_vfs
from litestream_vfs.connect import connect
from litestream_vfs.process import PROCESS, WARM_KEPT
from litestream_vfs.vfs import file_of


def litestream_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("litestream-"))


def test_close_stops_every_thread_and_later_connections_start_afresh(file_replica):
    follower = connect(file_replica.url)
    assert follower.execute("SELECT count(*) FROM Track").fetchall()
    pinned = connect(file_replica.url, txid=f"{file_replica.step_txids[2][1]:016x}")
    assert pinned.execute("SELECT count(*) FROM Track").fetchall()
    assert any(name.startswith("litestream-poll") for name in litestream_threads())
    follower.close()
    pinned.close()
    litestream_vfs.close()  # the public call: event-loop workers (an earlier test's), pollers, pools
    assert litestream_threads() == []
    assert PROCESS.replicas() == [] and PROCESS.cache.current_bytes == 0
    again = connect(file_replica.url)  # usable after close: pools and replicas come back on demand
    assert again.execute("SELECT count(*) FROM Track").fetchall() == file_replica.truth(None, "SELECT count(*) FROM Track")
    again.close()


def test_interpreter_exit_stops_the_threads(file_replica):
    """atexit runs close(): the process exits promptly with a follower still open."""
    script = ("import litestream_vfs, time\n"
              "from litestream_vfs.connect import connect\n"
              f"c = connect({file_replica.url!r})\n"
              "c.execute('SELECT count(*) FROM Track').fetchall()\n"
              "t = time.monotonic()\n")
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    assert time.monotonic() - began < 30


def test_register_poll_interval_reaches_running_pollers(file_replica):
    follower = connect(file_replica.url)
    follower.execute("SELECT 1").fetchall()
    poller = file_of(follower).poller
    try:
        litestream_vfs.register(poll_interval=0.05)
        assert poller.interval == 0.05
        before = poller.polls
        time.sleep(0.6)  # the poller stops waiting out the old 1 s interval: 20 polls a second
        assert poller.polls - before >= 5
    finally:
        litestream_vfs.register(poll_interval=1.0)
        follower.close()


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
    links = []
    for i in range(WARM_KEPT + 12):
        link = tmp_path / f"replica-{i}"
        os.symlink(file_replica.url, link)
        links.append(link)
    held = connect(str(links[0]))
    for link in links[1:]:
        connection = connect(str(link))
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
