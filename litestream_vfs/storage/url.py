"""Replica URLs, as Litestream spells them, and the backend each one opens.

Parsing is a pure function (`parse_replica_url`) so every accepted and
rejected form can be tested without touching a disk or a network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..errors import ReplicaError
from .base import Counters, Storage

#: Query parameter spellings Litestream accepts, mapped to one canonical name.
_OPTION_ALIASES = {"force-path-style": "forcePathStyle"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # 2+ letters: not a drive letter
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: What follows `scheme://` in each URL form, to say what a URL lacks.
_HOST_EXAMPLES = {"s3": ("bucket", "s3://my-bucket/my.db"), "gs": ("bucket", "gs://my-bucket/my.db"),
                  "abs": ("container", "abs://ACCOUNT@container/my.db"),
                  "webdav": ("host", "webdav://host:8080/my.db"), "webdavs": ("host", "webdavs://host/my.db"),
                  "sftp": ("host", "sftp://user@host/path/my.db")}


@dataclass(frozen=True)
class ReplicaLocation:
    """Where one replica lives. `str()` gives a credential-free URL."""

    scheme: str  # "file", "s3", or another scheme registered in OPENERS
    host: str  # bucket (s3, gs), container (abs), host[:port] (webdav, sftp), "" for file
    path: str  # file: absolute path; otherwise key prefix, no outer slashes
    options: tuple[tuple[str, str], ...] = ()
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def option(self, name: str) -> str | None:
        return dict(self.options).get(name)

    def __str__(self) -> str:
        if self.scheme == "file":
            return "file://" + quote(self.path)
        url = f"{self.scheme}://{self.host}/{quote(self.path)}"
        return url + ("?" + urlencode(self.options, safe=":/") if self.options else "")


def _open_file(location: ReplicaLocation, counters: Counters) -> Storage:
    from .file import FileStorage

    return FileStorage(location.path, counters)


def _open_s3(location: ReplicaLocation, counters: Counters) -> Storage:
    from .s3 import S3Storage  # boto3 loads only if the URL and environment leave S3 settings open

    return S3Storage(location, counters)


def _open_webdav(location: ReplicaLocation, counters: Counters) -> Storage:
    from .webdav import WebDAVStorage

    return WebDAVStorage(location, counters)


def _open_fsspec(location: ReplicaLocation, counters: Counters) -> Storage:
    from .fsspec_store import open_fsspec  # gcsfs / adlfs / sshfs: optional extras

    return open_fsspec(location, counters)


#: Scheme -> backend constructor; a URL whose scheme is missing is rejected.
OPENERS: dict[str, Callable[[ReplicaLocation, Counters], Storage]] = {
    "file": _open_file,
    "s3": _open_s3,
    "webdav": _open_webdav,
    "webdavs": _open_webdav,
    "gs": _open_fsspec,
    "abs": _open_fsspec,
    "sftp": _open_fsspec,
}


def _with_db_name(path: str, db_name: str | None, url: str) -> str:
    """Apply the directory-of-replicas rule: `dir/` + db file name."""
    if not path.endswith("/"):
        return path
    name = os.path.basename(db_name or "")
    if not name:
        raise ReplicaError(
            f"replica URL {url!r} names a directory of replicas (it ends in '/') "
            "but no database file name was given to pick one")
    return path + name


def _check_segments(segments: list[str], url: str) -> None:
    if ".." in segments:
        raise ReplicaError(f"replica URL {url!r}: '..' path segments are not allowed")


def parse_replica_url(url: str, db_name: str | None = None) -> ReplicaLocation:
    """Parse a replica URL (or plain path) into a ReplicaLocation; no I/O."""
    if not url or not url.strip():
        raise ReplicaError("empty replica URL")
    match = _SCHEME.match(url)
    if match is None:
        # A plain local path: relative paths (including '..') are the user's
        # own filesystem paths and resolve against the working directory.
        return ReplicaLocation("file", "", os.path.abspath(_with_db_name(url, db_name, url)))

    scheme = match.group(1).lower()
    if scheme not in OPENERS:
        raise ReplicaError(
            f"unsupported replica URL scheme {scheme!r} in {url!r} "
            f"(supported: {', '.join(sorted(OPENERS))})")
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    if scheme != "file" and not host:  # checked first: `s3://` lacks a bucket, not a database name
        role, example = _HOST_EXAMPLES.get(scheme, ("host", f"{scheme}://host/my.db"))
        raise ReplicaError(f"replica URL {url!r} has no {role} name (e.g. {example})")
    raw_path = _with_db_name(parts.path, db_name, url)
    segments = [unquote(s) for s in raw_path.split("/")]
    _check_segments(segments, url)

    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ReplicaError(f"replica URL {url!r}: file URLs must name a local path (file:///path)")
        path = unquote(raw_path)
        if not path.startswith("/"):
            raise ReplicaError(f"replica URL {url!r}: file URLs need an absolute path")
        return ReplicaLocation("file", "", os.path.normpath(path))

    if scheme == "s3" and not _BUCKET.fullmatch(host):
        raise ReplicaError(f"replica URL {url!r}: {host!r} is not a valid bucket name")
    username, _, password = userinfo.partition(":")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = tuple((_OPTION_ALIASES.get(k, k), v) for k, v in query)
    return ReplicaLocation(
        scheme=scheme,
        host=host,
        path="/".join(s for s in segments if s not in ("", ".")),
        options=options,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def parse_directory_url(url: str) -> ReplicaLocation:
    """Parse a URL naming a directory of replicas (a trailing '/' is optional): where the directory is."""
    if not url or not url.strip():
        raise ReplicaError("empty replica URL")
    if _SCHEME.match(url) is None:
        return parse_replica_url(url.rstrip("/") or "/")
    parts = urlsplit(url)
    return parse_replica_url(urlunsplit(parts._replace(path=parts.path.rstrip("/"))))


def open_storage(url: str, db_name: str | None = None, counters: Counters | None = None) -> Storage:
    """Open the replica store named by `url` (see parse_replica_url)."""
    location = parse_replica_url(url, db_name)
    return OPENERS[location.scheme](location, counters if counters is not None else Counters())
