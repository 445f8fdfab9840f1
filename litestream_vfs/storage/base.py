"""The one small interface every replica store implements.

A store knows where each level's LTX files live (layouts differ per backend:
`ltx/<N>/` for files and WebDAV, `<NNNN>/` for S3) and offers only reads.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Protocol

SNAPSHOT_LEVEL = 9
LEVELS = tuple(range(SNAPSHOT_LEVEL + 1))
_LTX_NAME = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})\.ltx")


@dataclass(frozen=True, order=True)
class LtxObject:
    """One LTX file in a replica: where it is, which TXIDs it spans, its size.

    The size is part of its equality: a file listed again with another size
    (an upload that was still in progress, a replica re-created at the same
    URL) is another file, and nothing cached for the old one applies to it.
    `tag` is what the store's listing says of this version of the file (S3 and
    Azure ETag, WebDAV getetag, GCS generation, a local file's inode; "" when the
    store gives nothing, as SFTP): caches that must tell a re-created file of
    the same name and size from the old one before reading it (indexes) key by
    it too.
    """

    level: int
    min_txid: int
    max_txid: int
    size: int
    tag: str = field(default="", compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.min_txid:016x}-{self.max_txid:016x}.ltx"

    def __str__(self) -> str:
        return f"L{self.level}/{self.name}"


def parse_ltx_name(name: str) -> tuple[int, int] | None:
    """(min_txid, max_txid) for a well-formed LTX file name, else None."""
    m = _LTX_NAME.fullmatch(name)
    if not m:
        return None
    lo, hi = int(m.group(1), 16), int(m.group(2), 16)
    if lo == 0 or hi < lo:
        return None
    return lo, hi


@dataclass
class Counters:
    """Request/byte counters; thread-safe, resettable, additive across scopes."""

    lists: int = 0
    gets: int = 0
    bytes_fetched: int = 0
    network_seconds: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    disk_hits: int = 0
    pages_decoded: int = 0
    #: verify=: whole files checked against their checksum, files that failed, pages served unchecked.
    bytes_verified: int = 0
    files_verified: int = 0
    files_poisoned: int = 0
    bytes_served_unverified: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    NAMES = ("lists", "gets", "bytes_fetched", "network_seconds",
             "cache_hits", "cache_misses", "disk_hits", "pages_decoded",
             "bytes_verified", "files_verified", "files_poisoned", "bytes_served_unverified")

    def add(self, **amounts: float) -> None:
        values = self.__dict__  # not getattr/setattr: this runs for every page a query reads
        with self._lock:
            for key, value in amounts.items():
                values[key] += value

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {name: getattr(self, name) for name in self.NAMES}

    def reset(self) -> None:
        with self._lock:
            for name in self.NAMES:
                setattr(self, name, type(getattr(self, name))())


class Storage(Protocol):
    """Read-only access to one replica (one database's LTX files)."""

    #: The replica URL with any credentials removed; safe to print.
    url: str
    counters: Counters

    def list_files(self, levels: tuple[int, ...] = LEVELS) -> list[LtxObject]:
        """Every LTX file in the given levels (other objects are ignored)."""
        ...

    def read_range(self, obj: LtxObject, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset`, or raise StorageError/ObjectNotFound."""
        ...

    def read_all(self, obj: LtxObject) -> bytes:
        """The whole object in one request."""
        ...

    def close(self) -> None:
        ...
