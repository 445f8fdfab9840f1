"""A replica on a WebDAV server: `<path>/ltx/<level>/<min>-<max>.ltx`.

That is the layout Litestream 0.5.17 writes through WebDAV (checked against
its output; levels in decimal, like the file backend). `webdav://` is plain
HTTP, `webdavs://` HTTPS with certificate verification. Credentials come from
the URL (`webdav://user:pass@host/path`) or, as a convenience of this package,
from LITESTREAM_WEBDAV_USERNAME / LITESTREAM_WEBDAV_PASSWORD (Litestream
itself reads them only from its config file) and are sent as Basic auth
(webdav_session.py: the connection pool, retries and errors).

Listing is one `PROPFIND Depth: infinity` on `<path>/ltx/`; servers that
refuse infinite depth get one `Depth: 1` PROPFIND per level, issued
concurrently. Only GET and PROPFIND are ever sent. A file's ETag (`getetag`) is
its version tag (`LtxObject.tag`): a replica re-created with files of the same
names and sizes is another replica, not the old one's cached pages.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import urllib3

from ..errors import ReplicaError, StorageError
from .base import LEVELS, Counters, LtxObject, parse_ltx_name
from .tree import LTX_LAYOUT, Listed, child_url
from .url import ReplicaLocation
from .webdav_session import WebDAVSession

log = logging.getLogger(__name__)

_DAV = "{DAV:}"
_PROPFIND_BODY = (b'<?xml version="1.0" encoding="utf-8"?>'
                  b'<D:propfind xmlns:D="DAV:"><D:prop>'
                  b"<D:resourcetype/><D:getcontentlength/><D:getetag/>"
                  b"</D:prop></D:propfind>")
_LEVEL_DIR = re.compile(r"\d+")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_STATUS_CODE = re.compile(r"^HTTP/\d(?:\.\d)? (\d{3})")
#: Answers to `Depth: infinity` meaning "not allowed here", not "no access".
_NO_INFINITE_DEPTH = {400, 403, 405, 501}


@dataclass(frozen=True)
class DavEntry:
    """One `<response>` of a multistatus body: decoded path, size, collection?, ETag ("" if none)."""

    path: str
    size: int | None
    is_collection: bool
    etag: str = ""


def parse_multistatus(body: bytes) -> list[DavEntry]:
    """The resources a 207 Multi-Status body describes (RFC 4918 §14.16).

    `href` may be an absolute URL or path and is percent-decoded; a property
    counts only from a propstat whose status is 200.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not a WebDAV multistatus body ({exc})") from exc
    if root.tag != _DAV + "multistatus":
        raise ValueError(f"not a WebDAV multistatus body (root element {root.tag!r})")
    entries = []
    for response in root.iter(_DAV + "response"):
        href = (response.findtext(_DAV + "href") or "").strip()
        if not href:
            continue
        size: int | None = None
        collection, etag = False, ""
        for propstat in response.iter(_DAV + "propstat"):
            status = _STATUS_CODE.match((propstat.findtext(_DAV + "status") or "").strip())
            if status is None or status.group(1) != "200":
                continue
            length = propstat.findtext(f"{_DAV}prop/{_DAV}getcontentlength")
            if length and length.strip().isdigit():
                size = int(length)
            collection |= propstat.find(f"{_DAV}prop/{_DAV}resourcetype/{_DAV}collection") is not None
            etag = (propstat.findtext(f"{_DAV}prop/{_DAV}getetag") or etag).strip()
        entries.append(DavEntry(unquote(urlsplit(href).path), size, collection, etag))
    return entries


def ltx_objects(entries: list[DavEntry], ltx_path: str, url: str) -> list[LtxObject]:
    """LTX files among `entries` lying exactly at `<ltx_path>/<level>/<name>`."""
    prefix = ltx_path.rstrip("/") + "/"
    found = []
    for entry in entries:
        if entry.is_collection or not entry.path.startswith(prefix):
            continue
        level, _, name = entry.path[len(prefix):].partition("/")
        txids = parse_ltx_name(name)
        if not _LEVEL_DIR.fullmatch(level) or txids is None:
            continue
        if entry.size is None:
            raise StorageError(f"{url}: the server gave no size for ltx/{level}/{name}")
        found.append(LtxObject(int(level), txids[0], txids[1], entry.size, entry.etag))
    return found


class WebDAVStorage:
    """Read-only WebDAV replica: listing by PROPFIND, reading by GET, through one `WebDAVSession`."""

    layout = LTX_LAYOUT

    def __init__(self, location: ReplicaLocation, counters: Counters | None = None) -> None:
        self.url = str(location)  # ReplicaLocation's str() never includes credentials
        self.counters = counters if counters is not None else Counters()
        self._http = WebDAVSession(location, os.environ, self.counters)  # credentials read at open
        self._root = "/" + "/".join(quote(s, safe="") for s in location.path.split("/") if s)
        self._infinite_depth = True  # until the server refuses it once
        self._owns_pool = True
        self._lock = threading.Lock()
        self._level_pool: ThreadPoolExecutor | None = None
        self.ranges_ignored = 0  # ranged GETs the server answered with the whole file

    def __repr__(self) -> str:
        return f"WebDAVStorage({self.url!r})"

    # -- requests ----------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return self._root + "".join("/" + quote(p, safe="") for p in parts)

    def _object_path(self, obj: LtxObject) -> str:
        return self._path("ltx", str(obj.level), obj.name)

    # -- listing -----------------------------------------------------------
    def _propfind(self, path: str, depth: str) -> list[DavEntry] | int:
        """Entries under `path`, or the HTTP status if it was 404 or refused."""
        what = self._http.shown_origin + path

        def handle(response: urllib3.BaseHTTPResponse) -> list[DavEntry] | int:
            if response.status == 207:
                body = self._http.read_body(response)
                try:
                    return parse_multistatus(body)
                except ValueError as exc:
                    raise StorageError(f"{what}: {exc}") from exc
            if response.status == 404 or (depth == "infinity" and response.status in _NO_INFINITE_DEPTH):
                self._http.read_body(response, 4096)
                return response.status
            raise self._http.fail(response, what)

        headers = {"Depth": depth, "Content-Type": 'application/xml; charset="utf-8"'}
        return self._http.send(what, "lists", "PROPFIND", path, headers, _PROPFIND_BODY, handle)

    def list_files(self, levels: tuple[int, ...] = LEVELS) -> list[LtxObject]:
        ltx_dir = self._path("ltx") + "/"
        if self._infinite_depth:
            entries = self._propfind(ltx_dir, "infinity")
            if isinstance(entries, list):
                wanted = set(levels)
                return sorted(o for o in self._objects(entries) if o.level in wanted)
            if entries == 404:
                return self._missing_ltx_dir()
            log.info("%s refuses PROPFIND Depth: infinity (HTTP %s); listing level by level",
                     self._http.origin, entries)
            self._infinite_depth = False
        return self._list_levels(levels)

    def walk(self) -> list[Listed]:
        """Every file below the root (path relative to it, size, ETag): one `PROPFIND Depth: infinity`,
        or one `Depth: 1` PROPFIND per directory (each depth concurrently) where that is refused."""
        root = self._root.rstrip("/") + "/"
        entries = self._propfind(root, "infinity") if self._infinite_depth else None
        if entries == 404:
            raise ReplicaError(f"no replicas at {self.url}: the server has no such directory")
        if not isinstance(entries, list):
            self._infinite_depth = False
            entries = self._walk_by_levels(root)
        base = unquote(root)
        found = []
        for entry in entries:
            if entry.is_collection or not entry.path.startswith(base):
                continue
            if entry.size is None:
                raise StorageError(f"{self.url}: the server gave no size for {entry.path}")
            found.append(Listed(entry.path[len(base):], entry.size, entry.etag))
        return found

    def _walk_by_levels(self, root: str) -> list[DavEntry]:
        """Breadth-first `Depth: 1` listing of every directory below `root`."""
        seen, frontier, entries = {unquote(root)}, [root], []
        while frontier:
            answers = list(self._lister().map(lambda path: self._propfind(path, "1"), frontier))
            if answers[0] == 404 and frontier == [root]:
                raise ReplicaError(f"no replicas at {self.url}: the server has no such directory")
            frontier = []
            for listed in answers:
                for entry in listed if isinstance(listed, list) else ():
                    if entry.is_collection:
                        path = entry.path.rstrip("/") + "/"
                        if path not in seen:
                            seen.add(path)
                            frontier.append(quote(path))
                    else:
                        entries.append(entry)
        return entries

    def child(self, relative: str) -> WebDAVStorage:
        """The replica at `relative` below this directory, on this store's connections."""
        twin = copy.copy(self)
        twin._root = self._root.rstrip("/") + "".join("/" + quote(s, safe="") for s in relative.split("/") if s)
        twin.url = child_url(self.url, relative)
        twin._owns_pool = False
        twin._lister = self._lister  # type: ignore[method-assign]  # list through the directory's threads
        return twin

    def _lister(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._level_pool is None:
                self._level_pool = ThreadPoolExecutor(len(LEVELS), thread_name_prefix="webdav-list")
            return self._level_pool

    def _objects(self, entries: list[DavEntry]) -> list[LtxObject]:
        return ltx_objects(entries, unquote(self._path("ltx")), self.url)

    def _list_levels(self, levels: tuple[int, ...]) -> list[LtxObject]:
        """One concurrent `Depth: 1` PROPFIND per level directory."""
        answers = list(self._lister().map(lambda level: self._propfind(self._path("ltx", str(level)) + "/", "1"),
                                levels))
        listed = [entries for entries in answers if isinstance(entries, list)]
        if not listed:
            return self._missing_ltx_dir()  # levels are created lazily; none yet
        wanted = set(levels)
        return sorted(o for entries in listed for o in self._objects(entries) if o.level in wanted)

    def _missing_ltx_dir(self) -> list[LtxObject]:
        """No `ltx/` yet: an empty replica if its directory exists, else no replica."""
        if self._propfind(self._root + "/", "0") == 404:
            raise ReplicaError(f"no replica at {self.url}: the server has no such directory")
        return []

    # -- reading -----------------------------------------------------------
    def read_range(self, obj: LtxObject, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        path = self._object_path(obj)
        what = f"{self.url}/ltx/{obj.level}/{obj.name}"
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}

        def handle(response: urllib3.BaseHTTPResponse) -> bytes:
            if response.status == 206:
                _check_content_range(response.headers.get("Content-Range", ""), offset, what)
                return _exact(self._http.read_body(response), length, offset, what)
            if response.status == 200:  # the server ignored Range: take our slice of the file
                self._note_ignored_range()
                data = self._http.read_body(response, offset + length)
                return _exact(data[offset:], length, offset, what)
            if response.status == 416:
                self._http.read_body(response, 4096)
                raise StorageError(f"{what} is truncated: it is shorter than "
                                   f"{offset + length} bytes (HTTP 416)")
            raise self._http.not_found(response, what)

        return self._http.send(what, "gets", "GET", path, headers, None, handle)

    def read_all(self, obj: LtxObject) -> bytes:
        path = self._object_path(obj)
        what = f"{self.url}/ltx/{obj.level}/{obj.name}"

        def handle(response: urllib3.BaseHTTPResponse) -> bytes:
            if response.status != 200:
                raise self._http.not_found(response, what)
            data = self._http.read_body(response)
            if len(data) > obj.size:
                raise StorageError(f"{what} has {len(data)} bytes, listed as {obj.size}")
            return _exact(data, obj.size, 0, what)

        return self._http.send(what, "gets", "GET", path, {}, None, handle)

    def _note_ignored_range(self) -> None:
        with self._lock:
            self.ranges_ignored += 1
            first = self.ranges_ignored == 1
        if first:
            log.warning("%s ignores HTTP Range requests: every page read downloads the "
                        "file up to that page", self._http.origin)

    def close(self) -> None:
        if not self._owns_pool:
            return
        with self._lock:
            pool, self._level_pool = self._level_pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._http.close()


def _exact(data: bytes, length: int, offset: int, what: str) -> bytes:
    """`data` if it is `length` bytes. urllib3 already turned a dropped connection into a
    (retried) error, so a complete but short body means the file is shorter than listed."""
    if len(data) != length:
        raise StorageError(f"{what} is truncated: wanted {length} bytes at offset {offset}, "
                           f"got {len(data)}")
    return data


def _check_content_range(header: str, offset: int, what: str) -> None:
    """A 206 must start where we asked; a server that shifts ranges is broken."""
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None or int(match.group(1)) != offset:
        raise StorageError(f"{what}: the server answered a range starting at {offset} "
                           f"with Content-Range {header!r}")

