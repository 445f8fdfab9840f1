"""What every connection of a process shares: settings, page cache, worker pools, replicas.

One `Replica` (and one background poller) per replica URL and cache
directory, however many connections read it, so a second connection starts
warm and polling costs at most one LIST per interval per replica; the
`Registry` (registry.py) keeps them, and a few warm after use. `close()` (also run at interpreter exit)
stops every thread, closes every storage client and drops every cache.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from dataclasses import dataclass, field, replace
from contextlib import contextmanager
from typing import Iterator, Mapping

from .diskcache import DEFAULT_DISK_BYTES, DiskCache
from .executors import Executors
from .heap import tune_heap
from .late_close import LateCloser
from .pagecache import PageCache
from .poller import Poller
from .registry import CLOSE_TIMEOUT, WARM_KEPT, Entry, Registry, replica_key
from .replica import Replica
from .storage import open_storage
from .storage.base import Counters
from .verify import DEFAULT_MODE, BackgroundVerifier, parse_mode

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_POLL_SECONDS = 1.0
ENV_REPLICA_URL = "LITESTREAM_REPLICA_URL"

__all__ = ["CLOSE_TIMEOUT", "DEFAULT_CACHE_BYTES", "DEFAULT_POLL_SECONDS", "ENV_REPLICA_URL", "PROCESS", "Poller",
           "Process", "Settings", "WARM_KEPT"]


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
    #: Default `max_lag` (seconds) of connections following latest (None: off).
    max_lag: float | None = None
    #: `verify=` for connections that do not set it (verify.py).
    verify: str = DEFAULT_MODE


class Process:
    """The process-wide registry; `PROCESS` is the one instance."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.cache = PageCache(self.settings.cache_bytes)
        self._lock = threading.Lock()
        self._executors: Executors | None = None
        self.registry = Registry()
        self._disks: dict[str, DiskCache] = {}
        #: Verifies large files after use under verify=auto (one thread for the process).
        self.verifier = BackgroundVerifier()
        #: Runs the closes a garbage collection started (late_close.py).
        self.late_closer = LateCloser()

    @property
    def executors(self) -> Executors:
        """The worker pools, started on first use (again after `close()`)."""
        with self._lock:
            if self._executors is None:
                self._executors = Executors()
            return self._executors

    def configure(self, replicas: Mapping[str, str] | None = None, cache_bytes: int | None = None,
                  poll_seconds: float | None = None, cache_dir: str | None = None,
                  disk_bytes: int | None = None, hydrate_dir: str | None = None,
                  max_lag: float | None = None, verify: str | None = None) -> None:
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
        if max_lag is not None:
            changes["max_lag"] = float(max_lag) if max_lag > 0 else None
        self.settings = replace(self.settings, **changes)
        if poll_seconds is not None:
            for entry in self.registry.entries():
                entry.poller.set_interval(float(poll_seconds))

    def replica_url_for(self, filename: str, uri_value: str | None) -> str | None:
        """URI parameter, then the registered mapping, then the environment (read now, not at import)."""
        if uri_value:
            return uri_value
        mapping = self.settings.replicas
        base = os.path.basename(filename)
        return mapping.get(filename) or mapping.get(base) or os.environ.get(ENV_REPLICA_URL) or None

    # -- replicas ------------------------------------------------------------
    def acquire(self, url: str, db_name: str | None, cache_dir: str | None = None) -> tuple[Replica, Poller]:
        """The replica for a new connection; `release()` it when the connection closes.

        Connections with another persistent cache directory get their own
        replica, so one connection's `cache_dir=` never changes another's.
        """
        key = replica_key(url, db_name, cache_dir)
        source, disk_path = key
        self.late_closer.start()  # here, never inside a collection: its closes need the thread
        entry = self.registry.use(key)
        if entry is None:  # a new storage client is made outside the lock: other opens never wait on it
            storage = open_storage(url, db_name)
            entry = self.registry.use(key, lambda: self._entry(Replica(storage, self.cache, self.executors), source))
            if entry.replica.storage is not storage:  # another open made it first
                storage.close()
        if disk_path is not None and entry.replica.disk is None:
            entry.replica.attach_disk(self.disk_cache(disk_path))
        return entry.replica, entry.poller

    def _entry(self, replica: Replica, source: str) -> Entry:
        """A replica entering the registry, with the process's settings."""
        replica.source_url = source
        replica.verify_mode = self.settings.verify
        replica.verifier.background = self.verifier
        return Entry(replica, Poller(replica, self.settings.poll_seconds))

    def release(self, replica: Replica) -> None:
        """A connection is done with `replica`: keep it warm a while, then close it."""
        self.registry.release(replica)

    def replica(self, url: str, db_name: str | None) -> tuple[Replica, Poller]:
        """The replica for a tool (CLI, restore, validate): kept warm, not held open."""
        found = self.acquire(url, db_name, self.settings.cache_dir)
        self.release(found[0])
        return found

    @contextmanager
    def lend(self, url: str, replica: Replica) -> Iterator[Replica]:
        """Serve connections to `url` from `replica` (built elsewhere, e.g. from a fleet's one
        listing) while the block runs, then forget it; a replica already open for `url` wins."""
        with self.registry.lend(replica_key(url, None, self.settings.cache_dir),
                                lambda: self._entry(replica, replica.source_url)) as lent:
            yield lent

    def disk_cache(self, directory: str) -> DiskCache:
        """One DiskCache per directory per process (each holds per-thread connections)."""
        path = os.path.abspath(os.path.expanduser(directory))
        with self._lock:
            disk = self._disks.get(path)
            if disk is None:
                disk = self._disks[path] = DiskCache(path, self.settings.disk_bytes)
            return disk

    def replicas(self) -> list[Replica]:
        return [entry.replica for entry in self.registry.entries()]

    def pollers(self) -> list[Poller]:
        return [entry.poller for entry in self.registry.entries()]

    def totals(self) -> dict[str, float]:
        """Counters summed over every replica this process holds."""
        total = Counters()
        for replica in self.replicas():
            total.add(**replica.counters.snapshot())
        return total.snapshot()

    def reset_counters(self) -> None:
        for replica in self.replicas():
            replica.counters.reset()

    # -- lifecycle -------------------------------------------------------------
    def close(self, timeout: float = CLOSE_TIMEOUT) -> list[str]:
        """Stop every thread (joined, at most `timeout` s per group), close storage clients,
        drop caches. Returns the names of threads that did not stop in time (normally none).
        Connections still open fail their next read that needs the network; new ones start afresh."""
        entries = self.registry.clear()
        with self._lock:
            executors, self._executors = self._executors, None
            disks = list(self._disks.values())
            self._disks.clear()
        hydrate = sys.modules.get(f"{__package__}.hydrate")  # loaded only if some open asked for it
        alive = hydrate.stop_all(timeout) if hydrate is not None else []
        self.verifier.stop()
        alive += self.late_closer.stop(timeout)
        for entry in entries:
            alive += entry.poller.stop(timeout)
        if executors is not None:
            alive += executors.shutdown(timeout)
        for entry in entries:
            entry.replica.close()
        for disk in disks:
            disk.close()
        self.cache.clear()
        return alive


PROCESS = Process()
atexit.register(PROCESS.close)
tune_heap()  # the machinery loads at the first open: from then on the process reads replicas
