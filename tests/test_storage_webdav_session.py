"""WebDAVSession against a real WebDAV server (WsgiDAV) serving real Litestream files:
one keep-alive pool with the login, connections kept or dropped, retries, clear errors."""

from __future__ import annotations

import concurrent.futures
import socket

import pytest

from litestream_vfs.errors import ObjectNotFound, StorageError
from litestream_vfs.storage import open_storage, parse_replica_url
from litestream_vfs.storage import webdav_session
from litestream_vfs.storage.base import Counters
from litestream_vfs.storage.retry import Backoff
from litestream_vfs.storage.webdav_session import PASSWORD_ENV, USERNAME_ENV, WebDAVSession, credentials
from support.proxy import FaultPlan, Proxy
from support.webdav import on_disk, via

#: What a GET reads before handing the response back (the session settles the rest).
HEAD_BYTES = 10


def read_head(session: WebDAVSession, path: str) -> bytes:
    return session.send(path, "gets", "GET", path, {}, None, lambda response: session.read_body(response, HEAD_BYTES))


def test_a_small_unread_remainder_is_drained_and_a_large_one_never_downloaded(webdav_replica):
    counters = Counters()
    session = WebDAVSession(parse_replica_url(webdav_replica.url), {}, counters)
    files = sorted(on_disk(webdav_replica), key=lambda o: o.size)
    small, large = files[0], files[-1]
    assert small.size <= 64 * 1024 < large.size - HEAD_BYTES, [o.size for o in files]
    path = {o: f"/{webdav_replica.path}/ltx/{o.level}/{o.name}" for o in (small, large)}
    try:
        for _ in range(5):
            assert read_head(session, path[small])[:4] == b"LTX1"
        # the rest of each small body was drained, so its connection goes back to the pool
        assert counters.gets == 5 and counters.bytes_fetched == 5 * small.size
        for _ in range(3):
            assert read_head(session, path[large])[:4] == b"LTX1"
        # a large remainder is not downloaded: the connection is dropped instead
        assert counters.gets == 8 and counters.bytes_fetched == 5 * small.size + 3 * HEAD_BYTES
    finally:
        session.close()


def test_a_404_is_object_not_found_and_a_401_access_denied(webdav_replica):
    missing = f"/{webdav_replica.path}/ltx/0/no-such.ltx"
    for password, error in ((None, "the-file not found"), ("wrong", "access denied to the-file .HTTP 401")):
        location = parse_replica_url(webdav_replica.server.url(webdav_replica.path, password=password))
        session = WebDAVSession(location, {}, Counters())

        def refuse(response):
            raise session.not_found(response, "the-file")

        try:
            with pytest.raises((ObjectNotFound, StorageError), match=error) as caught:
                session.send("the-file", "gets", "GET", missing, {}, None, refuse)
            assert isinstance(caught.value, ObjectNotFound) == (password is None)
        finally:
            session.close()


def test_concurrent_reads_share_the_pool(webdav_replica):
    storage = open_storage(webdav_replica.url)
    objs = on_disk(webdav_replica)
    expected = {o: (webdav_replica.directory / "ltx" / str(o.level) / o.name).read_bytes()[:512] for o in objs}
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda o: storage.read_range(o, 0, 512), objs * 8))
    finally:
        storage.close()
    assert got == [expected[o] for o in objs * 8]
def test_wrong_password_is_access_denied(webdav_replica):
    store = open_storage(webdav_replica.server.url(webdav_replica.path, password="not-the-password"))
    with pytest.raises(StorageError, match="access denied.*HTTP 401.*check credentials") as caught:
        store.list_files()
    assert store.url in str(caught.value) and "not-the-password" not in str(caught.value)
    store.close()


def test_no_credentials_is_access_denied(webdav_replica, monkeypatch):
    monkeypatch.delenv(USERNAME_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    store = open_storage(webdav_replica.server.url(webdav_replica.path, with_credentials=False))
    with pytest.raises(StorageError, match="access denied"):
        store.list_files()
    store.close()


def test_credentials_from_the_environment(webdav_replica, monkeypatch):
    monkeypatch.setenv(USERNAME_ENV, webdav_replica.server.username)
    monkeypatch.setenv(PASSWORD_ENV, webdav_replica.server.password)
    store = open_storage(webdav_replica.server.url(webdav_replica.path, with_credentials=False))
    assert store.list_files() == on_disk(webdav_replica)
    store.close()


def test_credentials_prefer_the_url():
    location = parse_replica_url("webdav://me:s%3Acret@host/db")
    env = {USERNAME_ENV: "env-user", PASSWORD_ENV: "env-pass"}
    assert credentials(location, env) == ("me", "s:cret")
    assert credentials(parse_replica_url("webdav://host/db"), env) == ("env-user", "env-pass")
    assert credentials(parse_replica_url("webdav://host/db"), {}) is None


def test_server_down_is_retried_then_reported(monkeypatch):
    monkeypatch.setattr(webdav_session, "BACKOFF", Backoff(attempts=3, base_seconds=0.01))
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = open_storage(f"webdav://user:secret@127.0.0.1:{port}/db")
    with pytest.raises(StorageError, match=f"cannot reach WebDAV server http://127.0.0.1:{port} "
                                           "for webdav://127.0.0.1:.*Connection refused") as caught:
        store.list_files()
    assert "secret" not in str(caught.value)
    assert store.counters.lists == 3
    store.close()


@pytest.mark.parametrize("kind", ["status", "reset", "truncate"])
def test_transient_faults_are_retried(webdav_replica, kind, monkeypatch):
    monkeypatch.setattr(webdav_session, "BACKOFF", Backoff(attempts=4, base_seconds=0.01))
    obj = max(on_disk(webdav_replica), key=lambda o: o.size)
    expected = (webdav_replica.directory / "ltx" / str(obj.level) / obj.name).read_bytes()
    with Proxy(f"http://{webdav_replica.server.netloc}") as proxy:
        store = open_storage(via(proxy, webdav_replica))
        try:
            proxy.set_fault(FaultPlan(kind, 1.0, kinds=frozenset({"GET"}), status=503))
            with pytest.raises(StorageError, match="gave up after 4 attempts"):
                store.read_all(obj)
            assert proxy.counts()["GET"] == 4
            proxy.set_fault(FaultPlan(kind, 0.5, seed=3, kinds=frozenset({"GET"}), status=503))
            assert store.read_all(obj) == expected
        finally:
            store.close()


def test_webdavs_speaks_tls(webdav_replica):
    store = open_storage(f"webdavs://{webdav_replica.server.netloc}/{webdav_replica.path}")
    with pytest.raises(StorageError, match="TLS error talking to https://127.0.0.1"):
        store.list_files()
    store.close()


