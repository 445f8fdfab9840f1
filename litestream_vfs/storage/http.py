"""A small keep-alive HTTP/1.1 client for object stores: one connection per thread and endpoint.

Sockets, not http.client, urllib3 or botocore: importing http.client alone
(it pulls in the email package and ssl) costs about 20 ms of a 20 ms-latency
open, and a reader needs little of HTTP: GET with a few headers, bodies by
Content-Length, chunks or close. Every fault is an OSError the caller can
retry (`retry` is the one retry layer), except one handled here: a request
on a reused idle connection that the server had already closed is re-sent
once on a fresh connection, before any byte of an answer arrived.
Timeouts: `connect` to open a connection, `read` for silence on a socket.
Forward proxies come from HTTP_PROXY/HTTPS_PROXY/NO_PROXY as botocore takes
them (http:// proxies; https endpoints through a CONNECT tunnel).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit

_MAX_LINE = 65536
_MAX_HEADERS = 200


@dataclass(frozen=True)
class Timeouts:
    """Socket timeouts in seconds: `read` bounds silence between bytes, not a whole body."""

    connect: float = 3.0
    read: float = 10.0


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class ProtocolError(ConnectionError):
    """The server's answer is not HTTP/1.1 as we read it."""


class IncompleteBody(ConnectionError):
    """The body ended before its announced length: worth another attempt."""

    def __init__(self, received: int, expected: int | None) -> None:
        super().__init__(f"the body broke off after {received} of {expected or 'unknown'} bytes")


class _Stale(ConnectionError):
    """A reused connection was closed by the server before it answered."""


def proxy_for(endpoint: str) -> str | None:
    """The forward proxy HTTP_PROXY/HTTPS_PROXY/NO_PROXY name for `endpoint`, read as botocore reads
    them (urllib's rules); urllib loads only when some *_proxy variable is set."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None
    import urllib.request

    parts = urlsplit(endpoint)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class _Connection:
    def __init__(self, endpoint: str, timeouts: Timeouts, tls: Any) -> None:
        parts = urlsplit(endpoint)
        self.host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        proxy = proxy_for(endpoint)
        #: Sent with every request through a proxy to a plain-HTTP endpoint (absolute-form targets).
        self.prefix, self.proxy_headers = "", {}
        via = urlsplit(proxy) if proxy else None
        if via is not None and via.scheme != "http":
            raise ProtocolError(f"proxy {proxy!r}: only http:// proxies are supported")
        address = (via.hostname or "", via.port or 80) if via else (self.host, port)
        sock = socket.create_connection(address, timeout=timeouts.connect)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            auth = _proxy_authorization(via) if via else {}
            if via and parts.scheme == "https":
                _tunnel(sock, f"{self.host}:{port}", auth)
            elif via:
                self.prefix, self.proxy_headers = f"http://{parts.netloc}", auth
            if parts.scheme == "https":
                sock = tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(timeouts.read)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")
        self.used = False

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def exchange(self, method: str, target: str, headers: dict[str, str]) -> tuple[Response, bool]:
        """(the answer, whether the connection may be used again)."""
        lines = [f"{method} {self.prefix}{target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in (*headers.items(), *self.proxy_headers.items())]
        reused, self.used = self.used, True
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status_line = self.reader.readline(_MAX_LINE)
            if not status_line:
                raise ConnectionResetError("the server closed the connection")
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            if reused:  # an idle keep-alive the server had closed: nothing was answered
                raise _Stale(str(exc)) from exc
            raise
        version, status = _status(status_line)
        names = self._headers()
        while 100 <= status < 200 and status != 101:  # interim answers; the real one follows
            version, status = _status(self.reader.readline(_MAX_LINE))
            names = self._headers()
        keep = version == "HTTP/1.1" and names.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304):
            return Response(status, names, b""), keep
        if "chunked" in names.get("transfer-encoding", "").lower():
            return Response(status, names, self._chunks()), keep
        length = names.get("content-length")
        if length is None:
            return Response(status, names, self.reader.read()), False
        if not length.isdigit():
            raise ProtocolError(f"bad Content-Length {length!r}")
        return Response(status, names, self._exactly(int(length))), keep

    def _headers(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.reader.readline(_MAX_LINE)
            if line in (b"\r\n", b"\n"):
                return names
            if not line:
                raise ConnectionResetError("the connection closed inside the headers")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            key = name.strip().lower()
            names[key] = f"{names[key]}, {value.strip()}" if key in names else value.strip()
        raise ProtocolError("too many header lines")

    def _exactly(self, length: int) -> bytes:
        data = self.reader.read(length)
        if len(data) < length:
            raise IncompleteBody(len(data), length)
        return data

    def _chunks(self) -> bytes:
        parts = []
        while True:
            size_line = self.reader.readline(_MAX_LINE)
            if not size_line:
                raise IncompleteBody(sum(map(len, parts)), None)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from None
            if size == 0:
                self._headers()  # trailers, up to the blank line
                return b"".join(parts)
            parts.append(self._exactly(size))
            self._exactly(2)  # the chunk's CRLF


def _proxy_authorization(via: Any) -> dict[str, str]:
    if not via.username:
        return {}
    import base64
    from urllib.parse import unquote

    pair = f"{unquote(via.username)}:{unquote(via.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def _tunnel(sock: socket.socket, authority: str, auth: dict[str, str]) -> None:
    """Ask the proxy for a tunnel to `authority` (HTTP CONNECT); TLS then runs inside it."""
    request = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"] + [f"{k}: {v}" for k, v in auth.items()]
    sock.sendall(("\r\n".join(request) + "\r\n\r\n").encode("latin-1"))
    reader = sock.makefile("rb")  # nothing follows the proxy's answer before our TLS hello
    try:
        _, status = _status(reader.readline(_MAX_LINE))
        while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
            pass
    finally:
        reader.close()
    if status != 200:
        raise ConnectionRefusedError(f"the proxy refused a tunnel to {authority} (HTTP {status})")


def _status(line: bytes) -> tuple[str, int]:
    version, _, rest = line.decode("latin-1").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ProtocolError(f"bad status line {line[:80]!r}")
    return version, int(code)


class Transport:
    """Sends requests to `scheme://host:port` endpoints; thread-safe, connections kept per thread."""

    def __init__(self, timeouts: Timeouts, ca_bundle: str | None = None) -> None:
        self.timeouts = timeouts
        #: CA certificates to trust for https (None: AWS_CA_BUNDLE if set, else the system's).
        self.ca_bundle = ca_bundle
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[_Connection] = set()
        self._tls: Any = None

    def request(self, method: str, endpoint: str, target: str, headers: dict[str, str]) -> Response:
        """`target` is the path plus query string; the whole body is read before returning."""
        try:
            return self._once(method, endpoint, target, headers)
        except _Stale:
            return self._once(method, endpoint, target, headers)

    def _once(self, method: str, endpoint: str, target: str, headers: dict[str, str]) -> Response:
        conns: dict[str, _Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.pop(endpoint, None) or self._connect(endpoint)
        try:
            response, keep = conn.exchange(method, target, headers)
        except BaseException:
            self._discard(conn)
            raise
        if keep:
            conns[endpoint] = conn
        else:
            self._discard(conn)
        return response

    def _connect(self, endpoint: str) -> _Connection:
        tls = self._tls_context() if endpoint.startswith("https:") else None
        conn = _Connection(endpoint, self.timeouts, tls)
        with self._lock:
            self._open.add(conn)
        return conn

    def _discard(self, conn: _Connection) -> None:
        with self._lock:
            self._open.discard(conn)
        conn.close()

    def _tls_context(self) -> Any:
        """Verified TLS with the system's CAs or the bundle named (ssl loads only for https)."""
        if self._tls is None:
            import ssl

            self._tls = ssl.create_default_context(cafile=self.ca_bundle or os.environ.get("AWS_CA_BUNDLE") or None)
        return self._tls

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()
