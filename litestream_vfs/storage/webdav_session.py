"""HTTP to one WebDAV server: a keep-alive pool with Basic auth, retries, clear errors.

`WebDAVSession` is what `WebDAVStorage` sends its PROPFINDs and GETs through:
one urllib3 connection pool shared by every thread (and by the stores of a
directory's replicas), each request timed and counted, its connection returned
clean or dropped, transient faults (5xx, 429, resets, timeouts) retried, and
whatever is left turned into one `StorageError` that names the server and
never the credentials.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import urllib3
from urllib3.exceptions import (HTTPError, IncompleteRead, NameResolutionError, NewConnectionError,
                               ProtocolError, SSLError)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from ..errors import ObjectNotFound, StorageError
from .base import Counters
from .retry import Backoff, retry
from .url import ReplicaLocation

T = TypeVar("T")

USERNAME_ENV = "LITESTREAM_WEBDAV_USERNAME"
PASSWORD_ENV = "LITESTREAM_WEBDAV_PASSWORD"
MAX_CONNECTIONS = 16
BACKOFF = Backoff()
_DRAIN_LIMIT = 64 * 1024  # unread body bytes worth reading to keep a connection
_CONNECTION_REPR = re.compile(r"^HTTPS?Connection\([^)]*\): ")


def credentials(location: ReplicaLocation, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(username, password) from the URL, else the environment, else None."""
    if location.username or location.password:
        return location.username or "", location.password or ""
    username, password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if username or password:
        return username or "", password or ""
    return None


class _Retryable(Exception):
    """A server-side hiccup (5xx, 429) worth another try."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (SSLError, NameResolutionError)):
        return False
    return isinstance(exc, (_Retryable, ProtocolError, IncompleteRead, Urllib3Timeout))


class WebDAVSession:
    """One server's connection pool (with the login), and every request sent through it."""

    def __init__(self, location: ReplicaLocation, environ: Mapping[str, str], counters: Counters) -> None:
        self.counters = counters
        scheme = "https" if location.scheme == "webdavs" else "http"
        self.origin = f"{scheme}://{location.host}"
        self.shown_origin = f"{location.scheme}://{location.host}"  # for messages
        headers = {"User-Agent": "litestream-vfs"}
        login = credentials(location, environ)
        if login is not None:
            token = base64.b64encode(":".join(login).encode("utf-8")).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        self._pool = urllib3.connection_from_url(
            self.origin, maxsize=MAX_CONNECTIONS, block=False, headers=headers, retries=False,
            timeout=urllib3.Timeout(connect=5, read=30),
            **({"cert_reqs": "CERT_REQUIRED"} if scheme == "https" else {}))

    def send(self, what: str, counter: str, method: str, path: str, headers: Mapping[str, str],
             body: bytes | None, handle: Callable[[urllib3.BaseHTTPResponse], T]) -> T:
        """One request about `what` (retried while transient); `handle` reads the streamed response."""
        return self._guarded(what, lambda: self._request(counter, method, path, headers, body, handle))

    def _request(self, counter: str, method: str, path: str, headers: Mapping[str, str],
                 body: bytes | None, handle: Callable[[urllib3.BaseHTTPResponse], T]) -> T:
        """One timed request, counted in `counter`."""
        start = time.perf_counter()
        try:
            response = self._pool.urlopen(method, path, body=body, headers={**self._pool.headers, **headers},
                                          redirect=False, preload_content=False)
            try:
                return handle(response)
            finally:
                self._settle(response)
        finally:
            self.counters.add(**{counter: 1}, network_seconds=time.perf_counter() - start)

    def read_body(self, response: urllib3.BaseHTTPResponse, limit: int | None = None) -> bytes:
        """The body (or its first `limit` bytes), counted in bytes_fetched."""
        data = response.read(limit) if limit is not None else response.read()
        self.counters.add(bytes_fetched=len(data))
        return data

    def _settle(self, response: urllib3.BaseHTTPResponse) -> None:
        """Return the connection to the pool clean, or drop it if much is left unread."""
        left = response.length_remaining
        if not response.closed and left is not None and left <= _DRAIN_LIMIT:
            self.read_body(response)
        if not response.closed:
            response.close()  # unknown or large remainder: cheaper to reconnect
        response.release_conn()

    def fail(self, response: urllib3.BaseHTTPResponse, what: str) -> Exception:
        """The error for an unexpected status; 5xx/429 are retried."""
        status = response.status
        self.read_body(response, 4096)
        if status in (401, 403):
            return StorageError(
                f"access denied to {what} (HTTP {status}): check credentials "
                f"(user:password in the URL, or {USERNAME_ENV} and {PASSWORD_ENV})")
        if status == 429 or status >= 500:
            return _Retryable(f"{what}: HTTP {status} {response.reason}")
        if 300 <= status < 400:
            return StorageError(f"{what}: unexpected redirect (HTTP {status}) to "
                                f"{response.headers.get('Location', '?')}")
        return StorageError(f"{what}: unexpected HTTP {status} {response.reason}")

    def not_found(self, response: urllib3.BaseHTTPResponse, what: str) -> Exception:
        """ObjectNotFound for a 404 of a file, else as `fail`."""
        if response.status == 404:
            self.read_body(response, 4096)
            return ObjectNotFound(f"{what} not found (removed by compaction?)")
        return self.fail(response, what)

    def _guarded(self, what: str, call: Callable[[], T]) -> T:
        """Retry transient faults, then turn whatever is left into one clear error."""
        try:
            return retry(call, _is_transient, BACKOFF)
        except _Retryable as exc:
            raise StorageError(f"{exc}; gave up after {BACKOFF.attempts} attempts") from exc
        except SSLError as exc:
            raise StorageError(f"TLS error talking to {self.origin} for {what}: "
                               f"{_reason(exc)}") from exc
        except NewConnectionError as exc:
            tries = f" ({BACKOFF.attempts} attempts)" if _is_transient(exc) else ""
            raise StorageError(f"cannot reach WebDAV server {self.origin} for {what}: "
                               f"{_reason(exc)}{tries}") from exc
        except HTTPError as exc:
            tries = f"; gave up after {BACKOFF.attempts} attempts" if _is_transient(exc) else ""
            raise StorageError(f"connection to WebDAV server {self.origin} failed for {what} "
                               f"({_reason(exc)}){tries}") from exc

    def close(self) -> None:
        self._pool.close()


def _reason(exc: BaseException) -> str:
    """urllib3's message without its connection repr (it never holds credentials)."""
    return _CONNECTION_REPR.sub("", str(exc).split("\n")[0]) or type(exc).__name__
