"""What every connection of a process shares: settings, page cache, thread pool, replicas.

One `Replica` (and one background poller) per replica URL, however many
connections read it, so a second connection starts warm and polling costs at
most one LIST per interval per replica.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from contextlib import contextmanager
from typing import Iterator, Mapping

from .diskcache import DEFAULT_DISK_BYTES, DiskCache
from .pages import PageCache
from .replica import Replica
from .storage import open_storage
from .storage.base import Counters
from .verify import DEFAULT_MODE, BackgroundVerifier, parse_mode

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_POLL_SECONDS = 1.0
WORKERS = 32
ENV_REPLICA_URL = "LITESTREAM_REPLICA_URL"


@dataclass(frozen=True)
class Settings:
    """Process-wide defaults that `register()` changes; URI parameters override per connection."""

    replicas: Mapping[str, str] = field(default_factory=dict)
    cache_bytes: int = DEFAULT_CACHE_BYTES
    poll_seconds: float = DEFAULT_POLL_SECONDS
    #: Directory of the persistent cache shared across processes (None: memory only).
    cache_dir: str | None = None
    disk_bytes: int = DEFAULT_DISK_BYTES
    #: Directory for hydrated local copies of every replica opened (None: only `?hydrate=PATH`).
    hydrate_dir: str | None = None
    #: `verify=` for connections that do not set it (verify.py).
    verify: str = DEFAULT_MODE


class Poller:
    """Lists level 0 of one replica every interval while some connection follows `latest`."""

    def __init__(self, replica: Replica, interval: float) -> None:
        self.replica = replica
        self.interval = interval
        self.last_error: Exception | None = None
        self._followers = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def follow(self) -> None:
        with self._lock:
            self._followers += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"litestream-poll {self.replica.storage.url}",
                                                daemon=True)
                self._thread.start()

    def unfollow(self) -> None:
        with self._lock:
            self._followers -= 1

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                if self._followers <= 0:
                    self._thread = None
                    return
            try:
                self.replica.poll()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep polling; readers see lag grow
                self.last_error = exc


class Process:
    """The process-wide registry; `PROCESS` is the one instance."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.cache = PageCache(self.settings.cache_bytes)
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="litestream-fetch")
        self._lock = threading.Lock()
        self._replicas: dict[str, tuple[Replica, Poller]] = {}
        self._disks: dict[str, DiskCache] = {}
        #: Verifies large files after use under verify=auto (one thread for the process).
        self.verifier = BackgroundVerifier()
        atexit.register(self.verifier.stop)

    def configure(self, replicas: Mapping[str, str] | None = None, cache_bytes: int | None = None,
                  poll_seconds: float | None = None, cache_dir: str | None = None,
                  disk_bytes: int | None = None, hydrate_dir: str | None = None,
                  verify: str | None = None) -> None:
        changes: dict[str, object] = {}
        if verify is not None:
            changes["verify"] = parse_mode(verify)
            for replica in self.replicas():
                replica.verify_mode = changes["verify"]
        if hydrate_dir is not None:
            changes["hydrate_dir"] = hydrate_dir or None
        if cache_dir is not None:
            changes["cache_dir"] = cache_dir or None
        if disk_bytes is not None:
            changes["disk_bytes"] = int(disk_bytes)
        if replicas is not None:
            changes["replicas"] = dict(replicas)
        if cache_bytes is not None:
            changes["cache_bytes"] = int(cache_bytes)
            self.cache.resize(int(cache_bytes))
        if poll_seconds is not None:
            changes["poll_seconds"] = float(poll_seconds)
        self.settings = replace(self.settings, **changes)

    def replica_url_for(self, filename: str, uri_value: str | None) -> str | None:
        """URI parameter, then the registered mapping, then the environment (read now, not at import)."""
        if uri_value:
            return uri_value
        mapping = self.settings.replicas
        base = os.path.basename(filename)
        return mapping.get(filename) or mapping.get(base) or os.environ.get(ENV_REPLICA_URL) or None

    def replica(self, url: str, db_name: str | None) -> tuple[Replica, Poller]:
        key = url + ("\0" + db_name if url.endswith("/") and db_name else "")
        with self._lock:
            found = self._replicas.get(key)
            if found is None:
                replica = Replica(open_storage(url, db_name), self.cache, self.pool)
                replica.source_url = url + db_name if url.endswith("/") and db_name else url
                replica.verify_mode = self.settings.verify
                replica.verifier.background = self.verifier
                found = (replica, Poller(replica, self.settings.poll_seconds))
                self._replicas[key] = found
            return found

    @contextmanager
    def lend(self, url: str, replica: Replica) -> Iterator[Replica]:
        """Serve connections to `url` from `replica` (built elsewhere, e.g. from a fleet's one
        listing) while the block runs, then forget it; a replica already open for `url` wins."""
        with self._lock:
            entry = self._replicas.get(url)
            ours = entry is None
            if entry is None:
                entry = self._replicas[url] = (replica, Poller(replica, self.settings.poll_seconds))
        try:
            yield entry[0]
        finally:
            if ours:
                with self._lock:
                    if self._replicas.get(url) is entry:
                        del self._replicas[url]

    def disk_cache(self, directory: str) -> DiskCache:
        """One DiskCache per directory per process (each holds per-thread connections)."""
        path = os.path.abspath(os.path.expanduser(directory))
        with self._lock:
            disk = self._disks.get(path)
            if disk is None:
                disk = self._disks[path] = DiskCache(path, self.settings.disk_bytes)
            return disk

    def replicas(self) -> list[Replica]:
        with self._lock:
            return [replica for replica, _ in self._replicas.values()]

    def totals(self) -> dict[str, float]:
        """Counters summed over every replica this process has read."""
        total = Counters()
        for replica in self.replicas():
            total.add(**replica.counters.snapshot())
        return total.snapshot()

    def reset_counters(self) -> None:
        for replica in self.replicas():
            replica.counters.reset()


PROCESS = Process()
