"""late_close: a connection the garbage collector frees is closed without deadlocking, even when
the collection interrupted this thread inside one of our locks (found by the suite: an open made
a poller under the registry's lock, and the collection it set off waited for that lock)."""

from __future__ import annotations

import gc

from litestream_vfs.connect import connect
from litestream_vfs.late_close import LateCloser, collecting
from litestream_vfs.process import PROCESS
from support.threads import run_threads, wait_for


class Forgotten:
    """Holds a connection in a reference cycle: only the garbage collector frees it."""

    def __init__(self, url: str) -> None:
        self.connection = connect(url)
        self.connection.execute("SELECT count(*) FROM Track").fetchall()
        self.me = self


def users(url: str) -> int:
    return next(entry.users for key, entry in PROCESS.registry._entries.items() if key[0] == url)


def test_a_collection_inside_the_registry_lock_closes_the_forgotten_connection_later(file_replica):
    keep = connect(file_replica.url)  # the replica stays in use: its count of users is what moves
    Forgotten(file_replica.url)
    before = users(file_replica.url)

    def collect_under_the_registry_lock() -> None:
        with PROCESS.registry._lock:  # any allocation made under it may start a collection
            gc.collect()

    run_threads([collect_under_the_registry_lock], timeout=20, name="collector")  # a hang fails here
    wait_for(lambda: users(file_replica.url) == before - 1, what="the forgotten connection's release")
    keep.close()


def test_outside_a_collection_a_close_runs_at_once_and_stop_runs_what_is_queued():
    closer, done = LateCloser(), []
    closer.run(lambda: done.append("now"))
    assert done == ["now"] and not collecting()

    class Queues:
        def __del__(self) -> None:
            closer.run(lambda: done.append("collected"))

    cycle = Queues()
    cycle.me = cycle
    del cycle
    gc.collect()
    assert done == ["now"]  # queued, and no thread was started to run it
    assert closer.stop(5) == [] and done == ["now", "collected"]
