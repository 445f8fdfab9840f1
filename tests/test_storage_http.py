"""The keep-alive transport under S3Storage: reuse, stale connections, timeouts (a local server)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from litestream_vfs.storage.http import IncompleteBody, Timeouts, Transport


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    connections: set[int] = set()
    hold = 0.0

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).connections.add(id(self.connection))
        time.sleep(self.hold)
        body = self.path.encode() + b" " + self.headers.get("X-Echo", "").encode()
        self.send_response(200)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (body[:3], body[3:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body) + (100 if self.path == "/short" else 0)))
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/short":
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler], http.server.ThreadingHTTPServer]]:
    handler = type("Handler", (_Handler,), {"connections": set(), "hold": 0.0})
    running = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    running.daemon_threads = True
    running.handle_error = lambda request, address: None  # a client that timed out has gone: expected
    thread = threading.Thread(target=running.serve_forever, name="http-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{running.server_address[1]}", handler, running
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=10)


def test_one_connection_serves_a_thread_s_requests(server):
    endpoint, handler, _ = server
    transport = Transport(Timeouts())
    answers = [transport.request("GET", endpoint, f"/object/{i}", {"X-Echo": "hi"}) for i in range(5)]
    assert [a.body for a in answers] == [f"/object/{i} hi".encode() for i in range(5)]
    assert all(a.status == 200 and a.headers["content-length"] for a in answers)
    assert len(handler.connections) == 1
    transport.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_silently(server):
    endpoint, handler, _ = server
    transport = Transport(Timeouts())
    transport.request("GET", endpoint, "/first", {})
    transport._local.conns[endpoint].sock.shutdown(socket.SHUT_RDWR)  # as if the server hung up
    assert transport.request("GET", endpoint, "/second", {}).body == b"/second "
    transport.close()


def test_chunked_bodies_and_connection_close(server):
    endpoint, handler, _ = server
    transport = Transport(Timeouts())
    assert transport.request("GET", endpoint, "/chunked", {}).body == b"/chunked "
    assert transport.request("GET", endpoint, "/close", {}).body == b"/close "
    assert transport.request("GET", endpoint, "/after", {}).body == b"/after "
    assert len(handler.connections) == 2  # a new one after the server said close
    transport.close()


def test_a_body_shorter_than_announced_is_an_incomplete_body(server):
    endpoint, _, _ = server
    transport = Transport(Timeouts())
    with pytest.raises(IncompleteBody):
        transport.request("GET", endpoint, "/short", {})
    assert transport.request("GET", endpoint, "/next", {}).body == b"/next "  # on a fresh connection
    transport.close()


def test_silence_longer_than_the_read_timeout_fails_in_time(server):
    endpoint, handler, _ = server
    handler.hold = 2.0
    transport = Transport(Timeouts(connect=1.0, read=0.2))
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        transport.request("GET", endpoint, "/slow", {})
    assert time.monotonic() - began < 1.5
    transport.close()


def test_refused_connection_is_an_os_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        Transport(Timeouts()).request("GET", f"http://127.0.0.1:{port}", "/", {})
