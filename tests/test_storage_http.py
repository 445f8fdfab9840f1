"""The keep-alive transport under S3Storage: reuse, stale connections, timeouts (a local server)."""

from __future__ import annotations

import http.server
import socket
import subprocess
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
        type(self).connections.add(self.client_address[1])  # one client port per connection
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


# -- forward proxies, as botocore honours HTTP_PROXY / HTTPS_PROXY / NO_PROXY ------------
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
              "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def test_plain_http_through_a_proxy_with_credentials(server, no_proxy_env, monkeypatch):
    from support.forward_proxy import ForwardProxy

    endpoint, handler, _ = server
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://user:p%40ss@"))
        transport = Transport(Timeouts())
        assert transport.request("GET", endpoint, "/via?x=1", {"Host": endpoint[7:]}).body == b"/via?x=1 "
        transport.close()
        (method, target, auth), = proxy.seen
    assert (method, target) == ("GET", f"{endpoint}/via?x=1")
    assert auth == "Basic dXNlcjpwQHNz"  # user:p@ss


def test_no_proxy_bypasses_it(server, no_proxy_env, monkeypatch):
    from support.forward_proxy import ForwardProxy

    endpoint, _, _ = server
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert Transport(Timeouts()).request("GET", endpoint, "/direct", {}).body == b"/direct "
        assert proxy.seen == []


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[str, str]]:
    """HTTPS on localhost with a self-signed certificate (the CA bundle to trust is its path)."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    handler = type("Handler", (_Handler,), {"connections": set(), "hold": 0.0})
    running = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    running.socket = context.wrap_socket(running.socket, server_side=True)
    running.daemon_threads = True
    running.handle_error = lambda request, address: None
    thread = threading.Thread(target=running.serve_forever, name="https-test-server", daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{running.server_address[1]}", str(cert)
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=10)


def test_https_through_a_proxy_tunnel_verifies_the_server(tls_server, no_proxy_env, monkeypatch):
    from support.forward_proxy import ForwardProxy

    endpoint, ca_bundle = tls_server
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("AWS_CA_BUNDLE", ca_bundle)
        transport = Transport(Timeouts())
        assert transport.request("GET", endpoint, "/secret", {"Host": endpoint[8:]}).body == b"/secret "
        transport.close()
        assert proxy.seen == [("CONNECT", endpoint[8:], None)]
        monkeypatch.delenv("AWS_CA_BUNDLE")
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            Transport(Timeouts()).request("GET", endpoint, "/secret", {})
