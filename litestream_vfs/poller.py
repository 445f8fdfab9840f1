"""Background polling of one replica while some connection follows `latest`.

The poller records its failures instead of hiding them: the last error, when
polls last succeeded, how many failed. Connections read them to fail loudly
when the replica is stale (`max_lag`) and `litestream_stats` reports them.
"""

from __future__ import annotations

import threading
import time

from .replica import Replica


class Poller:
    """Lists level 0 of one replica every `interval` seconds while it has followers."""

    def __init__(self, replica: Replica, interval: float) -> None:
        self.replica = replica
        #: Seconds between polls (`set_interval` changes it for a running poller).
        self.interval = interval
        self.last_error: Exception | None = None
        self.last_error_at: float | None = None
        self.errors = 0
        self.polls = 0
        self._followers = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def follow(self) -> None:
        with self._lock:
            self._followers += 1
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name=f"litestream-poll {self.replica.storage.url}",
                                                daemon=True)
                self._thread.start()

    def set_interval(self, seconds: float) -> None:
        """Poll every `seconds` from now on (the current wait ends at once)."""
        self.interval = seconds
        self._wake.set()

    def unfollow(self) -> None:
        with self._lock:
            self._followers -= 1
            if self._followers <= 0:
                self._wake.set()  # let the thread see it has nobody to poll for, now

    @property
    def failing_since(self) -> float | None:
        """time.time() of the last success when the latest poll failed (None: it did not)."""
        if self.last_error is None:
            return None
        return self.replica.lister.last_success or self.last_error_at

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                self._wake.clear()
                if self._followers <= 0 or self._stopped:
                    self._thread = None
                    return
            try:
                self.replica.poll()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep polling; connections see it (max_lag, stats)
                self.last_error, self.last_error_at = exc, time.time()
                self.errors += 1
            finally:
                self.polls += 1

    def stop(self, timeout: float) -> list[str]:
        """Stop the thread and join it; names of threads still alive after `timeout`."""
        with self._lock:
            self._stopped = True
            thread = self._thread
            self._wake.set()
        if thread is None:
            return []
        thread.join(timeout)
        return [thread.name] if thread.is_alive() else []
