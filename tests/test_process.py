"""The process: lifecycle, and settings that reach running pollers."""

from __future__ import annotations

import subprocess
import sys
import time

import litestream_vfs
from litestream_vfs.connect import connect
from litestream_vfs.process import PROCESS
from litestream_vfs.vfs import file_of
from support.proxy import FaultPlan, Proxy
from support.threads import litestream_threads, run_threads, wait_for
from support.truth import through


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


#: Every listing of the slow replica is held this long.
SLOW_LIST_SECONDS = 1.5


def test_an_open_never_waits_on_another_replicas_network_reads(file_replica, replica_factory, seaweedfs,
                                                               monkeypatch):
    """A replica whose requests hang must not hold up opening and reading another one."""
    s3_replica = replica_factory.get("0.5.17", "s3", seaweedfs)
    for key, value in s3_replica.env.items():
        monkeypatch.setenv(key, value)
    query = "SELECT count(*) FROM Track"
    with Proxy(seaweedfs.endpoint_url) as slow:
        slow.set_fault(FaultPlan("delay", 1.0, kinds=frozenset({"LIST"}), delay=SLOW_LIST_SECONDS))

        def open_slow() -> tuple[list, float]:
            rows = read_once(through(slow, s3_replica.url), query)
            return rows, time.monotonic()

        def open_other() -> tuple[list, float, float]:
            wait_for(lambda: slow.max_concurrency_seen > 0, what="the slow replica's first request")
            began = time.monotonic()
            return read_once(file_replica.url, query), began, time.monotonic()

        (slow_rows, slow_done), (rows, began, done) = run_threads([open_slow, open_other], name="opens")
    assert rows == file_replica.truth(None, query) and slow_rows == s3_replica.truth(None, query)
    assert done < slow_done, "the open waited for the slow replica's open"
    assert done - began < SLOW_LIST_SECONDS


def read_once(url: str, query: str) -> list:
    """Open a connection, run one query, close it."""
    connection = connect(url)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()
