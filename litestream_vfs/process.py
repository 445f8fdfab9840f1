"""What every connection of a process shares: settings, page cache, worker pools, replicas.

One `Replica` (and one background poller) per replica URL and cache
directory, however many connections read it, so a second connection starts
warm and polling costs at most one LIST per interval per replica. A replica
no connection uses any more stays warm among the `WARM_KEPT` most recently
released, then is closed: a process that opens thousands of replicas over
its life holds only the ones in use. `close()` (also run at interpreter exit)
stops every thread, closes every storage client and drops every cache.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from contextlib import contextmanager
from typing import Iterator, Mapping

from .diskcache import DEFAULT_DISK_BYTES, DiskCache
from .executors import Executors
from .pagecache import PageCache
from .poller import Poller
from .replica import Replica
from .storage import open_storage
from .storage.base import Counters
from .verify import DEFAULT_MODE, BackgroundVerifier, parse_mode

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_POLL_SECONDS = 1.0
ENV_REPLICA_URL = "LITESTREAM_REPLICA_URL"
#: Replicas kept open (listing, indexes, storage client) after their last connection closed.
WARM_KEPT = 8
#: Seconds `close()` waits for each group of threads to stop.
CLOSE_TIMEOUT = 5.0

__all__ = ["DEFAULT_CACHE_BYTES", "DEFAULT_POLL_SECONDS", "ENV_REPLICA_URL", "PROCESS", "Poller", "Process",
           "Settings"]


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


@dataclass
class _Entry:
    replica: Replica
    poller: Poller
    users: int = 0


class Process:
    """The process-wide registry; `PROCESS` is the one instance."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.cache = PageCache(self.settings.cache_bytes)
        self._lock = threading.Lock()
        self._executors: Executors | None = None
        self._entries: dict[tuple[str, str | None], _Entry] = {}
        self._warm: OrderedDict[tuple[str, str | None], None] = OrderedDict()
        #: id(replica) -> its key: a close finds its entry at once, however many replicas are open.
        self._key_of: dict[int, tuple[str, str | None]] = {}
        self._disks: dict[str, DiskCache] = {}
        #: Verifies large files after use under verify=auto (one thread for the process).
        self.verifier = BackgroundVerifier()

    @property
    def executors(self) -> Executors:
        """The worker pools, started on first use (again after `close()`)."""
        with self._lock:
            return self._pools()

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
            for entry in self._all():
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
        key = self._key(url, db_name, cache_dir)
        source, disk_path = key
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.users += 1
                self._warm.pop(key, None)
        if entry is None:  # a new storage client is made outside the lock: other opens never wait on it
            storage = open_storage(url, db_name)
            with self._lock:
                entry = self._entries.get(key)
                if entry is None:
                    replica = Replica(storage, self.cache, self._pools())
                    replica.source_url = source
                    self._join(replica)
                    entry = self._entries[key] = _Entry(replica, Poller(replica, self.settings.poll_seconds))
                    self._key_of[id(replica)] = key
                    storage = None
                entry.users += 1
                self._warm.pop(key, None)
            if storage is not None:  # another open made it first
                storage.close()
        if disk_path is not None and entry.replica.disk is None:
            entry.replica.attach_disk(self.disk_cache(disk_path))
        return entry.replica, entry.poller

    def _join(self, replica: Replica) -> None:
        """(Under the lock.) The process's settings on a replica entering the registry."""
        replica.verify_mode = self.settings.verify
        replica.verifier.background = self.verifier

    def release(self, replica: Replica) -> None:
        """A connection is done with `replica`: keep it warm a while, then close it."""
        closing: list[_Entry] = []
        with self._lock:
            key = self._key_of.get(id(replica))
            entry = self._entries.get(key) if key is not None else None
            if entry is None or entry.replica is not replica:
                return
            entry.users -= 1
            if entry.users > 0:
                return
            self._warm[key] = None
            while len(self._warm) > WARM_KEPT:
                old, _ = self._warm.popitem(last=False)
                closing.append(self._entries.pop(old))
                self._key_of.pop(id(closing[-1].replica), None)
        for entry in closing:
            entry.poller.stop(CLOSE_TIMEOUT)
            entry.replica.close()

    def replica(self, url: str, db_name: str | None) -> tuple[Replica, Poller]:
        """The replica for a tool (CLI, restore, validate): kept warm, not held open."""
        found = self.acquire(url, db_name, self.settings.cache_dir)
        self.release(found[0])
        return found

    @staticmethod
    def _key(url: str, db_name: str | None, cache_dir: str | None) -> tuple[str, str | None]:
        """(replica URL, persistent cache directory or None): one replica each."""
        source = url + db_name if url.endswith("/") and db_name else url
        return source, os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else None

    def _pools(self) -> Executors:
        """(Under the lock.)"""
        if self._executors is None:
            self._executors = Executors()
        return self._executors

    def _all(self) -> list[_Entry]:
        with self._lock:
            return list(self._entries.values())

    @contextmanager
    def lend(self, url: str, replica: Replica) -> Iterator[Replica]:
        """Serve connections to `url` from `replica` (built elsewhere, e.g. from a fleet's one
        listing) while the block runs, then forget it; a replica already open for `url` wins."""
        key = self._key(url, None, self.settings.cache_dir)
        with self._lock:
            entry = self._entries.get(key)
            ours = entry is None
            if entry is None:
                self._join(replica)
                entry = self._entries[key] = _Entry(replica, Poller(replica, self.settings.poll_seconds), users=1)
                self._key_of[id(replica)] = key
        try:
            yield entry.replica
        finally:
            if ours:
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
                        self._key_of.pop(id(replica), None)
                        self._warm.pop(key, None)

    def disk_cache(self, directory: str) -> DiskCache:
        """One DiskCache per directory per process (each holds per-thread connections)."""
        path = os.path.abspath(os.path.expanduser(directory))
        with self._lock:
            disk = self._disks.get(path)
            if disk is None:
                disk = self._disks[path] = DiskCache(path, self.settings.disk_bytes)
            return disk

    def replicas(self) -> list[Replica]:
        return [entry.replica for entry in self._all()]

    def pollers(self) -> list[Poller]:
        return [entry.poller for entry in self._all()]

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
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._key_of.clear()
            self._warm.clear()
            executors, self._executors = self._executors, None
            disks = list(self._disks.values())
            self._disks.clear()
        hydrate = sys.modules.get(f"{__package__}.hydrate")  # loaded only if some open asked for it
        alive = hydrate.stop_all(timeout) if hydrate is not None else []
        self.verifier.stop()
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
