"""The replicas a process holds open: one per key, shared by its users, a few kept warm.

`Registry` owns which `Replica` (and its background `Poller`) serves a key
(replica URL, persistent cache directory). Connections share it while they
use it; once the last one released it, it stays warm among the `WARM_KEPT`
most recently released, then its poller is stopped and it is closed: a
process that opens thousands of replicas over its life holds only the ones
in use.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from .poller import Poller
from .replica import Replica

#: Replicas kept open (listing, indexes, storage client) after their last connection closed.
WARM_KEPT = 8
#: Seconds to wait for each group of threads to stop.
CLOSE_TIMEOUT = 5.0

#: (replica URL, persistent cache directory or None): one replica each.
Key = tuple[str, str | None]


def replica_key(url: str, db_name: str | None, cache_dir: str | None) -> Key:
    """The key of a replica opened by URL (a directory URL plus a database name) and cache directory."""
    source = url + db_name if url.endswith("/") and db_name else url
    return source, os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else None


@dataclass
class Entry:
    replica: Replica
    poller: Poller
    users: int = 0


class Registry:
    """Key -> the entry serving it, with its count of users and the warm ones in release order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, Entry] = {}
        self._warm: OrderedDict[Key, None] = OrderedDict()
        #: id(replica) -> its key: a release finds its entry at once, however many replicas are open.
        self._key_of: dict[int, Key] = {}

    def use(self, key: Key, make: Callable[[], Entry] | None = None) -> Entry | None:
        """The entry of `key` with one more user; if there is none, `make()` one (called under
        the lock, so two opens never make two), or None without `make`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if make is None:
                    return None
                entry = self._add(key, make())
            entry.users += 1
            self._warm.pop(key, None)
            return entry

    def _add(self, key: Key, entry: Entry) -> Entry:
        """(Under the lock.)"""
        self._entries[key] = entry
        self._key_of[id(entry.replica)] = key
        return entry

    def release(self, replica: Replica) -> None:
        """A user is done with `replica`: keep it warm a while, then close it."""
        closing: list[Entry] = []
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

    @contextmanager
    def lend(self, key: Key, make: Callable[[], Entry]) -> Iterator[Replica]:
        """Serve `key` from `make()`'s entry while the block runs, then forget it (without
        closing it: its maker owns it); an entry already serving `key` wins."""
        with self._lock:
            entry = self._entries.get(key)
            ours = entry is None
            if entry is None:
                entry = self._add(key, make())
        try:
            yield entry.replica
        finally:
            if ours:
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
                        self._key_of.pop(id(entry.replica), None)
                        self._warm.pop(key, None)

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def clear(self) -> list[Entry]:
        """Forget every entry; returns them for the caller to stop and close."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._key_of.clear()
            self._warm.clear()
        return entries
