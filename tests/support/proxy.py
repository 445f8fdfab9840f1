"""A recording, fault-injecting HTTP reverse proxy for tests and benchmarks.

Clients (boto3, the Go VFS, our VFS) talk to the proxy instead of the storage
server, so a test can count requests by kind, add per-request latency to model
a remote store, see how many requests overlapped, and inject the faults a real
network produces. Requests are forwarded byte for byte with the Host header
the client sent: an S3 SigV4 signature covers Host, so the client signs for
the proxy's host:port and the upstream verifies against that same header.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import random
import select
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

RequestKind = Literal["LIST", "GET", "HEAD", "PUT", "POST", "DELETE", "PROPFIND", "OTHER"]
FaultKind = Literal["delay", "status", "reset", "truncate", "drop"]

_CHUNK = 64 * 1024
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                         "upgrade", "transfer-encoding"})
_LIST_PARAMS = frozenset({"list-type", "prefix", "delimiter", "continuation-token",
                          "marker", "start-after"})
_ERROR_CODES = {500: "InternalError", 503: "SlowDown"}


@dataclass(frozen=True)
class RequestRecord:
    """One request as the proxy saw it; times are time.monotonic() seconds.

    `status` is None when no response was sent (reset, drop). `held` is the
    time the proxy deliberately waited (latency plus an injected delay), so a
    test can check latency was applied without measuring wall-clock time.
    """

    method: str
    path: str
    query: str
    kind: RequestKind
    status: int | None
    response_bytes: int
    start: float
    end: float
    held: float
    fault: FaultKind | None


@dataclass(frozen=True)
class FaultPlan:
    """Inject `kind` into a seeded-random `fraction` of the requests of `kinds`.

    delay: wait `delay` extra seconds, then forward. status: answer `status`
    (500 or 503) with an S3 XML error body, never forwarding. reset: close the
    connection with a TCP RST, no response. truncate: forward, send the
    headers (full Content-Length) and half the body, then close; a response
    without a Content-Length body (HEAD, empty, chunked) is reset instead,
    since there is nothing to cut short. drop: read the
    request, never answer, close when the client gives up or `max_hold`
    seconds pass.
    """

    kind: FaultKind
    fraction: float
    seed: int = 0
    kinds: frozenset[str] | None = None
    delay: float = 1.0
    status: int = 503
    max_hold: float = 30.0


def classify(method: str, path: str, query: str) -> RequestKind:
    """Kind of a request; a GET of a bucket root or with listing parameters is a LIST."""
    method = method.upper()
    if method == "GET":
        listing = _LIST_PARAMS & parse_qs(query, keep_blank_values=True).keys()
        segments = [s for s in path.split("/") if s]
        return "LIST" if listing or len(segments) <= 1 else "GET"
    if method in ("HEAD", "PUT", "POST", "DELETE", "PROPFIND"):
        return method  # type: ignore[return-value]
    return "OTHER"


def count_waves(records: list[RequestRecord]) -> int:
    """Number of sequential round trips ("waves") in a request log.

    Requests are taken in order of start time; a request starts a new wave
    when its start is at or after the end of every earlier-started request,
    i.e. it overlapped none of them. Equivalently: the number of disjoint
    intervals in the union of the [start, end] intervals. Requests that
    overlap, even in a chain, count as one wave.
    """
    waves = 0
    horizon = float("-inf")
    for record in sorted(records, key=lambda r: r.start):
        if record.start >= horizon:
            waves += 1
        horizon = max(horizon, record.end)
    return waves


class _Server(http.server.ThreadingHTTPServer):
    """Joins its handler threads on close (the stdlib default leaves them as daemons)."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the proxy keeps its own structured log."""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle holds the
        # body until the client's (delayed, up to 40 ms) ACK of the headers arrives.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, add=False)

    def handle_one_request(self) -> None:
        """Parse one request and dispatch every method to the same forwarder."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            self.close_connection = True
            return
        if not self.raw_requestline or not self.parse_request():
            self.close_connection = True
            return
        self.server.proxy._serve(self)


class Proxy:
    """Threaded reverse proxy on 127.0.0.1 forwarding to `upstream` (http[s]://host:port).

    Use as a context manager. `latency` (seconds, applied before forwarding
    each request) and the fault plan may be changed at any time; `reset()`
    clears the log and counters but keeps the settings.
    """

    def __init__(self, upstream: str, *, latency: float = 0.0,
                 upstream_timeout: float = 60.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"proxy upstream must be an http(s)://host:port URL, got {upstream!r}")
        self.upstream = upstream
        self._upstream_scheme = parts.scheme
        self._upstream_netloc = parts.netloc
        self._upstream_timeout = upstream_timeout
        self.latency = latency
        self._fault: FaultPlan | None = None
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._responding = 0  # requests whose response is under way but not yet logged
        self._records: list[RequestRecord] = []
        self._in_flight = 0
        self._max_concurrency = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Proxy:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"proxy->{self.upstream}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, unblock idle keep-alive connections, join every thread."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("proxy is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL clients should use instead of the upstream's."""
        return f"http://127.0.0.1:{self.port}"

    # -- configuration ---------------------------------------------------
    def set_fault(self, plan: FaultPlan | None) -> None:
        """Replace the fault plan (None: no faults); reseeds the RNG from the plan."""
        if plan is not None:
            if plan.kind not in ("delay", "status", "reset", "truncate", "drop"):
                raise ValueError(f"unknown fault kind {plan.kind!r}")
            if not 0.0 <= plan.fraction <= 1.0:
                raise ValueError(f"fault fraction must be within [0, 1], got {plan.fraction}")
        with self._lock:
            self._fault = plan
            self._rng = random.Random(plan.seed if plan else 0)

    # -- observations ----------------------------------------------------
    def records(self) -> list[RequestRecord]:
        """The log in order of arrival, once every response under way is logged.

        A client can read a response before the handler thread logs it; waiting
        here keeps "make a request, then inspect the log" free of races.
        """
        with self._settled:
            self._settled.wait_for(lambda: self._responding == 0, timeout=10)
            return sorted(self._records, key=lambda r: r.start)

    def counts(self) -> collections.Counter[str]:
        """Requests so far by kind (LIST, GET, HEAD, PUT, POST, DELETE, PROPFIND, OTHER)."""
        return collections.Counter(r.kind for r in self.records())

    @property
    def max_concurrency_seen(self) -> int:
        with self._lock:
            return self._max_concurrency

    def sequential_round_trips(self) -> int:
        """Waves of non-overlapping requests so far; see count_waves()."""
        return count_waves(self.records())

    def reset(self) -> None:
        with self._settled:
            self._settled.wait_for(lambda: self._responding == 0, timeout=10)
            self._records.clear()
            self._max_concurrency = self._in_flight

    # -- request handling (called on handler threads) ---------------------
    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _draw_fault(self, kind: RequestKind) -> FaultPlan | None:
        with self._lock:
            plan = self._fault
            if plan is None or (plan.kinds is not None and kind not in plan.kinds):
                return None
            return plan if self._rng.random() < plan.fraction else None

    def _serve(self, handler: _Handler) -> None:
        start = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight)
        parts = urlsplit(handler.path)
        kind = classify(handler.command, parts.path, parts.query)
        plan = self._draw_fault(kind)
        outcome = _Outcome()
        try:
            held = self.latency + (plan.delay if plan and plan.kind == "delay" else 0.0)
            if held > 0:
                self._stopping.wait(held)
            outcome.held = held
            if plan is None or plan.kind in ("delay", "truncate"):
                self._forward(handler, outcome, truncate=plan is not None and plan.kind == "truncate")
            elif plan.kind == "status":
                self._answer_error(handler, outcome, plan.status)
            elif plan.kind == "reset":
                _reset(handler)
            else:
                self._hold(handler, plan.max_hold)
        except OSError:
            handler.close_connection = True
        finally:
            end = time.monotonic()
            with self._lock:
                self._in_flight -= 1
                if outcome.responding:
                    self._responding -= 1
                    self._settled.notify_all()
                self._records.append(RequestRecord(
                    handler.command, parts.path, parts.query, kind, outcome.status,
                    outcome.sent, start, end, outcome.held, plan.kind if plan else None))

    def _forward(self, handler: _Handler, outcome: _Outcome, *, truncate: bool) -> None:
        conn_class = (http.client.HTTPSConnection if self._upstream_scheme == "https"
                      else http.client.HTTPConnection)
        upstream = conn_class(self._upstream_netloc, timeout=self._upstream_timeout)
        try:
            upstream.putrequest(handler.command, handler.path,
                                skip_host=True, skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in _HOP_BY_HOP or _is_chunked(name, value):
                    upstream.putheader(name, value)
            upstream.endheaders()
            _copy_request_body(handler, upstream)
            response = upstream.getresponse()
            self._relay_response(handler, response, outcome, truncate=truncate)
        finally:
            upstream.close()

    def _relay_response(self, handler: _Handler, response: http.client.HTTPResponse,
                        outcome: _Outcome, *, truncate: bool) -> None:
        length = response.getheader("Content-Length")
        bodyless = handler.command == "HEAD" or response.status in (204, 304) \
            or 100 <= response.status < 200
        chunked = not bodyless and length is None and response.chunked
        if truncate and (bodyless or length in (None, "0")):
            _reset(handler)  # nothing to cut short: fail the request outright
            return
        self._start_response(outcome)
        handler.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        if not bodyless and length is None and not chunked:
            handler.close_connection = True  # body delimited by connection close
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        outcome.status = response.status
        if bodyless:
            return
        limit = int(length) // 2 if truncate else None
        while limit is None or outcome.sent < limit:
            want = _CHUNK if limit is None else min(_CHUNK, limit - outcome.sent)
            data = response.read1(want) if want else b""
            if not data:
                break
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            outcome.sent += len(data)
        if truncate:
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        elif chunked:
            handler.wfile.write(b"0\r\n\r\n")

    def _answer_error(self, handler: _Handler, outcome: _Outcome, status: int) -> None:
        _discard_request_body(handler)
        code = _ERROR_CODES.get(status, "InternalError")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>injected by test proxy</Message>"
                f"<Resource>{_xml_escape(urlsplit(handler.path).path)}</Resource>"
                f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>").encode()
        self._start_response(outcome)
        handler.send_response_only(status)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(len(body)))
        if status == 503:
            handler.send_header("Retry-After", "1")
        handler.end_headers()
        handler.wfile.write(body)
        outcome.status, outcome.sent = status, len(body)

    def _start_response(self, outcome: _Outcome) -> None:
        with self._lock:
            self._responding += 1
        outcome.responding = True

    def _hold(self, handler: _Handler, max_hold: float) -> None:
        """Never answer: wait for the client to hang up, the deadline, or stop()."""
        _discard_request_body(handler)
        handler.wfile.flush()
        deadline = time.monotonic() + max_hold
        sock = handler.connection
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            readable, _, _ = select.select([sock], [], [], min(remaining, 0.1))
            if readable and not sock.recv(_CHUNK, socket.MSG_PEEK):
                break  # the client closed its end
        handler.close_connection = True


@dataclass
class _Outcome:
    status: int | None = None
    sent: int = 0
    held: float = 0.0
    responding: bool = False


def _is_chunked(name: str, value: str) -> bool:
    return name.lower() == "transfer-encoding" and "chunked" in value.lower()


def _copy_request_body(handler: _Handler, upstream: http.client.HTTPConnection) -> None:
    """Stream the client's body to the upstream unchanged (chunk framing included)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        while True:
            size_line = handler.rfile.readline(65537)
            upstream.send(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the blank line that ends the body
                    line = handler.rfile.readline(65537)
                    upstream.send(line)
                    if line in (b"\r\n", b"\n", b""):
                        return
            upstream.send(handler.rfile.read(size + 2))
    remaining = int(handler.headers.get("Content-Length") or 0)
    while remaining > 0:
        data = handler.rfile.read(min(_CHUNK, remaining))
        if not data:
            raise ConnectionError("client closed the connection mid-body")
        upstream.send(data)
        remaining -= len(data)


def _discard_request_body(handler: _Handler) -> None:
    class _Sink:
        def send(self, data: bytes) -> None:
            pass
    _copy_request_body(handler, _Sink())  # type: ignore[arg-type]


def _reset(handler: _Handler) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0) and no response."""
    handler.close_connection = True
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
