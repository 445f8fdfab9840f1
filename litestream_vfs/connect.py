"""Open replicas and connections from a URL: the one place that builds our URIs."""

from __future__ import annotations

import posixpath
from typing import Mapping
from urllib.parse import quote, urlencode, urlsplit

import apsw

from .errors import ReplicaError
from .process import PROCESS
from .replica import Replica, State
from .storage.url import parse_replica_url
from .timeparse import is_latest, parse_time, parse_txid
from .vfs import VFS_NAME, ensure_registered


def label_for(url: str) -> str:
    """A readable database name for a replica URL (its last path segment)."""
    path = urlsplit(url).path if "://" in url else url
    return posixpath.basename(path.rstrip("/")) or "replica.db"


def replica_uri(url: str, *, label: str | None = None, time: str | None = None, txid: str | None = None,
                params: Mapping[str, object] | None = None) -> str:
    """`file:` URI that opens `url` with the litestream VFS, optionally at a time or TXID.

    `params` adds other URI parameters (cache_dir=, hydrate=, ...).
    """
    uri = f"file:{quote(label or label_for(url))}?vfs={VFS_NAME}&replica={quote(url, safe='')}"
    if txid:
        uri += f"&litestream_txid={quote(txid, safe='')}"
    elif time:
        uri += f"&litestream_time={quote(time, safe='')}"
    if params:
        uri += "&" + urlencode({key: str(value) for key, value in params.items()}, safe="", quote_via=quote)
    return uri


def connect(url: str, *, time: str | None = None, txid: str | None = None, label: str | None = None,
            params: Mapping[str, object] | None = None) -> apsw.Connection:
    """A read-only APSW connection on a replica, at `latest` unless a time or TXID is given.

    For a directory of replicas (a URL ending in `/`), `label` names the database in it;
    `params` adds URI parameters (see `replica_uri`).
    """
    if not label:
        _refuse_directory(url, "pass label='my.db' to pick one")
    ensure_registered()
    return apsw.Connection(replica_uri(url, label=label, time=time, txid=txid, params=params),
                           flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def _refuse_directory(url: str, hint: str) -> None:
    """Refuse a directory-of-replicas URL with `hint`, once the URL itself (scheme, bucket, host) parses."""
    if url.endswith("/"):
        parse_replica_url(url, db_name="my.db")  # raises for what is wrong in the URL itself
        raise ReplicaError(f"{url} names a directory of replicas; {hint}")


def open_replica(url: str) -> Replica:
    """The process-wide `Replica` for one replica URL (not a directory of replicas)."""
    _refuse_directory(url, f"add the database name, e.g. {url}my.db")
    replica, _ = PROCESS.replica(url, None)
    replica.chains_for()  # list now: a missing or empty replica fails here, clearly
    return replica


def select_state(replica: Replica, time: str | None = None, txid: str | None = None) -> State:
    if txid and not is_latest(txid):
        return replica.state(parse_txid(txid))
    if time and not is_latest(time):
        return replica.state_at(parse_time(time))
    return replica.latest()
