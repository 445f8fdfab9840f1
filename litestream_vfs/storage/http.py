"""A small keep-alive HTTP/1.1 client for object stores: one connection per thread and host.

http.client, not urllib3 or botocore: a fraction of their import time, and
every fault stays visible to `retry` (no hidden retry layer here except one:
a request on a reused idle connection that the server had already closed is
re-sent once on a fresh connection, before any byte of an answer arrived).
Timeouts: `connect` to open a connection, `read` for silence on a socket.
"""

from __future__ import annotations

import http.client
import os
import threading
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Timeouts:
    """Socket timeouts in seconds: `read` bounds silence between bytes, not a whole body."""

    connect: float = 3.0
    read: float = 10.0


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


#: Faults of a connection whose answer never started: the server closed an idle keep-alive.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class Transport:
    """Sends requests to `scheme://host:port` endpoints; thread-safe, connections kept per thread."""

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []
        self._tls = None

    def request(self, method: str, endpoint: str, target: str, headers: dict[str, str]) -> Response:
        """`target` is the path plus query string; the whole body is read before returning."""
        conn, reused = self._connection(endpoint, fresh=False)
        try:
            answer = self._start(conn, method, target, headers)
        except _STALE:
            if not reused:
                raise
            conn, _ = self._connection(endpoint, fresh=True)
            answer = self._start(conn, method, target, headers)
        try:
            body = answer.read()
        except BaseException:
            conn.close()
            raise
        if answer.will_close:
            conn.close()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, body)

    def _start(self, conn: http.client.HTTPConnection, method: str, target: str,
               headers: dict[str, str]) -> http.client.HTTPResponse:
        """Send the request and read the status line and headers."""
        try:
            if conn.sock is None:
                conn.connect()  # under the connect timeout; reads then wait up to `read`
                conn.sock.settimeout(self.timeouts.read)
            conn.request(method, target, headers=headers)
            return conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def _connection(self, endpoint: str, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        """(this thread's connection to `endpoint`, whether it was used before)."""
        conns: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(endpoint)
        if conn is not None and not fresh and conn.sock is not None:
            return conn, True
        if conn is not None:
            conn.close()
            with self._lock:
                self._all.remove(conn)
        parts = urlsplit(endpoint)
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeouts.connect,
                                               context=self._tls_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeouts.connect)
        conns[endpoint] = conn
        with self._lock:
            self._all.append(conn)
        return conn, False

    def _tls_context(self):
        """Verified TLS with the system's CAs, or AWS_CA_BUNDLE's (ssl loads only for https)."""
        if self._tls is None:
            import ssl

            self._tls = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
        return self._tls

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
