"""Closes that the garbage collector starts, run where they cannot deadlock.

SQLite closes a connection's files when the connection is closed, and Python's
garbage collector closes a connection nobody references any more. A collection
runs at any allocation in any thread, so also while that thread holds one of
our locks: the suite once hung because an open made a poller under the
registry's lock, that allocation collected a forgotten connection, and its
close waited for the registry's lock to release the replica. So the part of a
close that touches shared state runs at once only outside a collection; inside
one it is queued (`SimpleQueue.put` is safe there) for one named thread.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
from typing import Any, Callable

_collecting = threading.local()


def _note_collection(phase: str, info: dict[str, Any]) -> None:
    _collecting.active = phase == "start"


gc.callbacks.append(_note_collection)


def collecting() -> bool:
    """Whether this thread is inside a garbage collection right now."""
    return getattr(_collecting, "active", False)


class LateCloser:
    """The `litestream-close` thread: runs the closes a garbage collection started.

    Started by `start` (from an open: never inside a collection, where starting a
    thread could itself wait on a lock its own thread holds); `stop` ends it and
    runs whatever is still queued.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="litestream-close", daemon=True)
                self._thread.start()

    def run(self, work: Callable[[], None]) -> None:
        """Run `work` now, or inside a garbage collection, moments later on the closer thread."""
        if collecting():
            self._queue.put(work)
        else:
            work()

    def stop(self, timeout: float) -> list[str]:
        """End the thread (joined at most `timeout` s), then run what is still queued here;
        returns the thread's name if it did not end in time."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
            if thread.is_alive():
                return [thread.name]
        self._drain()
        return []

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            self._call(work)

    def _drain(self) -> None:
        while True:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                return
            if work is not None:
                self._call(work)

    @staticmethod
    def _call(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - one failed close must not stop the others; reported as a thread's
            threading.excepthook(threading.ExceptHookArgs([*sys.exc_info(), threading.current_thread()]))
