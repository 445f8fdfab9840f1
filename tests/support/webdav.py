"""A real WebDAV server for tests (WsgiDAV on cheroot, in this process), and
replicas that the real `litestream replicate` writes through it.

WsgiDAV serves a temporary directory on a free 127.0.0.1 port with Basic auth
for one user, so Litestream (Go, gowebdav) writes through real WebDAV and our
backend reads the same files back. Running it in a thread keeps start-up to a
few milliseconds; `stop()` closes the listener and joins the thread.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

from litestream_vfs.storage.base import LtxObject

from .proxy import Proxy
from .replicas import ReplicaLocation, replicate_config, replicate_steps
from .workload import Step, prepare_database

_FINITE_DEPTH_ERROR = (b'<?xml version="1.0" encoding="utf-8"?>'
                       b'<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>')

USERNAME = "litestream"
PASSWORD = "p@ss:w/rd"  # characters that must be percent-encoded in a URL


@dataclass(frozen=True)
class WebDAVServer:
    """Where a running server listens, what it serves and who may read it."""

    root: Path
    port: int
    username: str
    password: str

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str, *, with_credentials: bool = True, password: str | None = None) -> str:
        """A `webdav://` replica URL for `path` on this server (credentials in the URL)."""
        auth = ""
        if with_credentials:
            secret = self.password if password is None else password
            auth = f"{quote(self.username, safe='')}:{quote(secret, safe='')}@"
        return f"webdav://{auth}{self.netloc}/{path.strip('/')}"


def webdav_app(root: Path, username: str, password: str) -> WsgiDAVApp:
    """A WsgiDAV app serving `root` read-write to one Basic-auth user, quietly."""
    return WsgiDAVApp({
        "provider_mapping": {"/": str(root)},
        "simple_dc": {"user_mapping": {"*": {username: {"password": password}}}},
        "http_authenticator": {"accept_basic": True, "accept_digest": False,
                               "default_to_digest": False},
        "dir_browser": {"enable": False},
        "verbose": 1,
        "logging": {"enable": False},
    })


def buffered_body(app: Callable) -> Callable:
    """Read each request body in full before `app` runs.

    gowebdav sends its PROPFIND bodies chunked. WsgiDAV answers a PROPFIND of
    a missing collection (404) without reading the body, and cheroot drains
    only Content-Length bodies, so the unread chunks were parsed as the next
    request on the keep-alive connection (a 400 that broke Litestream's
    listing at random). Buffering turns every body into a Content-Length one.
    """
    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return app(environ, start_response)
    return wrapped


def finite_depth_only(app: Callable) -> Callable:
    """Refuse `PROPFIND Depth: infinity` as RFC 4918 allows (Apache: DavDepthInfinity Off)."""
    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "PROPFIND" and environ.get("HTTP_DEPTH", "infinity") == "infinity":
            start_response("403 Forbidden", [("Content-Type", 'application/xml; charset="utf-8"'),
                                             ("Content-Length", str(len(_FINITE_DEPTH_ERROR)))])
            return [_FINITE_DEPTH_ERROR]
        return app(environ, start_response)
    return wrapped


def ranges_ignored(app: Callable) -> Callable:
    """Drop the Range header, like servers and proxies that always send whole files."""
    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ.pop("HTTP_RANGE", None)
        return app(environ, start_response)
    return wrapped


@contextmanager
def running_webdav(root: Path, username: str = USERNAME, password: str = PASSWORD, *,
                   quirks: tuple[Callable[[Callable], Callable], ...] = ()) -> Iterator[WebDAVServer]:
    """Serve `root` over WebDAV on a free loopback port until the block exits.

    `quirks` wrap the app (e.g. `finite_depth_only`, `ranges_ignored`) to
    imitate servers less capable than WsgiDAV.
    """
    root.mkdir(parents=True, exist_ok=True)
    app = webdav_app(root, username, password)
    for quirk in quirks:
        app = quirk(app)
    server = wsgi.Server(("127.0.0.1", 0), buffered_body(app), numthreads=16, shutdown_timeout=2)
    server.prepare()  # binds the socket, so the port is known before serving
    thread = threading.Thread(target=server.serve, name="wsgidav", daemon=True)
    thread.start()
    try:
        yield WebDAVServer(root=root, port=server.bind_addr[1], username=username,
                           password=password)
    finally:
        server.stop()
        thread.join(timeout=10)


@dataclass(frozen=True)
class WebDAVReplica:
    """A replica Litestream wrote through `server`, and the database it came from."""

    server: WebDAVServer
    path: str  # replica path on the server, no outer slashes
    db_path: Path
    #: (step name, TXID at which it landed), oldest first.
    step_txids: tuple[tuple[str, int], ...]

    @property
    def url(self) -> str:
        return self.server.url(self.path)

    @property
    def directory(self) -> Path:
        """The same replica as the server's files on disk (the ground truth of a listing)."""
        return self.server.root / self.path


def replicate_through_webdav(server: WebDAVServer, path: str, workdir: Path,
                             steps: Sequence[Step], binary: Path) -> WebDAVReplica:
    """Run real `litestream replicate` to `server` while `steps` commit, one shipped file each.

    Waits after each step until its L0 file is on the server (so each step
    ends at its own TXID), then until L1 compaction covers the last one.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "chinook.db"
    prepare_database(db_path)
    replica = WebDAVReplica(server, path.strip("/"), db_path, ())
    files = ReplicaLocation("file", str(replica.directory))
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, replica.url))
    landed = replicate_steps(binary, config, {}, files.newest_txid, db_path, steps, server.netloc)
    return WebDAVReplica(server, replica.path, db_path, tuple(landed))


def on_disk(replica: WebDAVReplica) -> list[LtxObject]:
    """The LTX files of `replica` as the server's disk holds them."""
    return ReplicaLocation("file", str(replica.directory)).ltx_files()


def via(proxy: Proxy, replica: WebDAVReplica) -> str:
    """The replica's URL (with credentials) pointing at `proxy` instead of the server."""
    return replica.url.replace(replica.server.netloc, f"127.0.0.1:{proxy.port}", 1)
