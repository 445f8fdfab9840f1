"""A directory of replicas (Litestream's directory replication) found in one listing.

Litestream replicating a directory (`dbs: - dir: D, pattern: "*.db"`) puts
each database under `<replica>/<its path relative to D>/`, each with its
backend's level layout. A store lists everything under the directory in one
paginated listing (`walk`), and `group_databases` sorts the objects into
databases by where their level directory sits, so databases are found, never
guessed; `child` then gives each database's own store, sharing the
directory's client and connections.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple, Protocol
from urllib.parse import quote

from ..errors import ReplicaError
from .base import Counters, LtxObject, Storage, parse_ltx_name

#: `<db>/ltx/<N>/<file>`: file, WebDAV, gs, abs, sftp (decimal levels).
LTX_LAYOUT = "ltx"
#: `<db>/<NNNN>/<file>`: S3 and S3-compatible stores (4-digit levels, no `ltx/`).
S3_LAYOUT = "s3"
_DECIMAL = re.compile(r"\d+")
_FOUR_DIGITS = re.compile(r"\d{4}")


class Listed(NamedTuple):
    """One file of a directory's listing: its path relative to the directory, its size and the
    store's version tag (as `LtxObject.tag`), so a database's share of it equals its own listing."""

    path: str
    size: int
    tag: str = ""


class DirectoryStorage(Storage, Protocol):
    """A store opened on a directory of replicas."""

    #: How levels are spelled under each database (LTX_LAYOUT or S3_LAYOUT).
    layout: str

    def walk(self) -> list[Listed]:
        """Every object below the directory: one listing."""
        ...

    def child(self, relative: str) -> Storage:
        """The replica at `relative` below this directory, sharing this store's client."""
        ...


def split_object(relative: str, layout: str, size: int, tag: str) -> tuple[str, LtxObject] | None:
    """(database path, LtxObject) for an LTX file's path relative to the directory, else None."""
    parts = relative.strip("/").split("/")
    if layout == LTX_LAYOUT:
        if len(parts) < 4 or parts[-3] != "ltx" or not _DECIMAL.fullmatch(parts[-2]):
            return None
        database = parts[:-3]
    else:
        if len(parts) < 3 or not _FOUR_DIGITS.fullmatch(parts[-2]):
            return None
        database = parts[:-2]
    txids = parse_ltx_name(parts[-1])
    if txids is None or "" in database:
        return None
    return "/".join(database), LtxObject(int(parts[-2]), txids[0], txids[1], size, tag)


def group_databases(entries: Iterable[Listed], layout: str) -> dict[str, list[LtxObject]]:
    """Database path -> its LTX files (sorted), from a directory's listing; other objects ignored."""
    found: dict[str, list[LtxObject]] = {}
    for entry in entries:
        parsed = split_object(entry.path, layout, entry.size, entry.tag)
        if parsed is not None:
            found.setdefault(parsed[0], []).append(parsed[1])
    return {database: sorted(files) for database, files in sorted(found.items())}


def list_databases(store: DirectoryStorage) -> dict[str, list[LtxObject]]:
    """Every database under the directory with its files, from one listing."""
    databases = group_databases(store.walk(), store.layout)
    if not databases:
        raise ReplicaError(f"no replicas under {store.url}: nothing there is laid out as "
                           "Litestream replicates a directory (<db>/ltx/<level>/ or <db>/<level>/ on S3)")
    return databases


def child_url(url: str, relative: str) -> str:
    """`url` (credential-free, maybe with a query) with `relative` appended to its path."""
    base, mark, query = url.partition("?")
    return base.rstrip("/") + "/" + quote(relative.strip("/")) + mark + query


def open_directory(url: str, counters: Counters | None = None) -> DirectoryStorage:
    """The store for a directory URL (ending in '/', or a plain directory path)."""
    from .url import OPENERS, parse_directory_url

    location = parse_directory_url(url)
    store = OPENERS[location.scheme](location, counters if counters is not None else Counters())
    if not hasattr(store, "walk"):
        raise ReplicaError(f"{url}: listing a directory of replicas is not supported for {location.scheme}://")
    return store  # type: ignore[return-value]
