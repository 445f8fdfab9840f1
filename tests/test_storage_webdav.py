"""The WebDAV backend against a real WebDAV server (WsgiDAV) and real Litestream.

Litestream 0.5.17 replicates a WAL-mode Chinook through WsgiDAV while a few
transactions commit; our backend must list exactly the files on the server's
disk, read them byte for byte, and let the package rebuild every restorable
state identically to `litestream restore`, directly and through the VFS.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import http.client
import re
import shutil
import socket
import urllib.parse
from pathlib import Path

import apsw
import pytest

import litestream_vfs
from litestream_vfs.errors import ObjectNotFound, ReplicaError, StorageError
from litestream_vfs.ltx.file import decode_file
from litestream_vfs.executors import Executors
from litestream_vfs.pagecache import PageCache
from litestream_vfs.replica import Replica
from litestream_vfs.restore import restore
from litestream_vfs.storage import open_storage, parse_replica_url
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.storage.retry import Backoff
from litestream_vfs.storage.webdav import (PASSWORD_ENV, USERNAME_ENV, WebDAVStorage, credentials,
                                           ltx_objects, parse_multistatus)
from litestream_vfs.storage import webdav as webdav_module

from support.binaries import litestream_binary
from support.proxy import FaultPlan, Proxy
from support.replicas import ReplicaLocation, run_restore
from support.webdav import (WebDAVReplica, finite_depth_only, ranges_ignored, replicate_through_webdav,
                             running_webdav)
from support.truth import assert_steps_read_like_restore
from support.workload import STEPS

VERSION = "0.5.17"
#: A few transactions of the shared workload: inserts, updates, deletes, a schema change.
WORKLOAD = STEPS[:5]
COMPARED_TABLES = ("Artist", "Track", "PlaylistTrack", "Genre")


@pytest.fixture(scope="module")
def dav(tmp_path_factory):
    with running_webdav(tmp_path_factory.mktemp("dav")) as server:
        yield server


@pytest.fixture(scope="module")
def replica(dav, tmp_path_factory) -> WebDAVReplica:
    return replicate_through_webdav(dav, "replicas/chinook.db", tmp_path_factory.mktemp("work"),
                                    WORKLOAD, litestream_binary(VERSION))


@pytest.fixture(scope="module")
def quirky(replica, tmp_path_factory):
    """A second server on the same files that refuses infinite depth and ignores Range."""
    with running_webdav(replica.server.root, quirks=(finite_depth_only, ranges_ignored)) as server:
        yield server


@pytest.fixture
def storage(replica):
    store = open_storage(replica.url)
    yield store
    store.close()


def on_disk(replica: WebDAVReplica) -> list[LtxObject]:
    return ReplicaLocation("file", str(replica.directory)).ltx_files()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def via(proxy: Proxy, replica: WebDAVReplica) -> str:
    """The replica's URL (with credentials) pointing at `proxy` instead of the server."""
    return replica.url.replace(replica.server.netloc, f"127.0.0.1:{proxy.port}", 1)


def raw_propfind(server, path: str, depth: str) -> tuple[int, bytes]:
    """One PROPFIND as any WebDAV client sends it; the server's reply as is."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    try:
        conn.request("PROPFIND", urllib.parse.quote(path), headers={
            "Depth": depth, "Authorization": f"Basic {token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- the layout Litestream writes ------------------------------------------------
def test_litestream_writes_the_file_layout(replica):
    relative = sorted(str(p.relative_to(replica.directory)) for p in replica.directory.rglob("*.ltx"))
    assert relative and all(p.split("/")[0] == "ltx" and p.split("/")[1].isdigit() for p in relative)
    levels = {int(p.split("/")[1]) for p in relative}
    assert {0, 1, 9} <= levels  # L0 per commit, L1 compaction, the snapshot level


def test_one_propfind_lists_every_level(replica, storage):
    assert storage.list_files() == on_disk(replica)
    assert storage.counters.lists == 1
    assert storage.list_files((0,)) == [o for o in on_disk(replica) if o.level == 0]


def test_url_carries_no_credentials(replica, storage):
    assert storage.url == f"webdav://{replica.server.netloc}/{replica.path}"
    assert replica.server.password not in storage.url


def test_reads_whole_files_and_ranges(replica, storage):
    for obj in on_disk(replica):
        data = storage.read_all(obj)
        assert data == (replica.directory / "ltx" / str(obj.level) / obj.name).read_bytes()
        header = decode_file(data, str(obj)).header  # verifies the file checksum too
        assert (header.min_txid, header.max_txid) == (obj.min_txid, obj.max_txid)
        assert storage.read_range(obj, 7, obj.size - 10) == data[7:-3]
        assert storage.read_range(obj, obj.size - 1, 1) == data[-1:]
    files = on_disk(replica)
    assert storage.counters.gets == 3 * len(files)
    assert storage.counters.bytes_fetched == sum(2 * o.size - 9 for o in files)


def test_concurrent_reads_share_the_pool(replica, storage):
    objs = on_disk(replica)
    expected = {o: (replica.directory / "ltx" / str(o.level) / o.name).read_bytes()[:512] for o in objs}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda o: storage.read_range(o, 0, 512), objs * 8))
    assert got == [expected[o] for o in objs * 8]


# -- restoring every state, as Litestream does -----------------------------------
def test_restore_matches_litestream_for_every_txid(replica, storage, tmp_path):
    executors = Executors(io=8, tasks=4)
    try:
        rep = Replica(storage, PageCache(64 << 20), executors)
        states = rep.chains_for().states
        assert list(states) == sorted({o.max_txid for o in on_disk(replica)})
        assert {txid for _, txid in replica.step_txids} <= set(states)
        for txid in states:
            ours, theirs = tmp_path / f"ours-{txid}.db", tmp_path / f"litestream-{txid}.db"
            restore(rep, rep.state(txid), str(ours))
            run_restore(litestream_binary(VERSION), replica.url, theirs, {}, txid)
            assert sha256(ours) == sha256(theirs), f"TXID {txid:016x}"
        latest = tmp_path / "ours-latest.db"
        restore(rep, rep.latest(), str(latest))
        assert sha256(latest) == sha256(tmp_path / f"litestream-{states[-1]}.db")
    finally:
        executors.shutdown()


def test_vfs_reads_each_step_through_webdav(replica, tmp_path):
    binary = litestream_binary(VERSION)
    assert_steps_read_like_restore(replica.url, replica.step_txids,
                                   lambda out, txid: run_restore(binary, replica.url, out, {}, txid),
                                   tmp_path, COMPARED_TABLES)


def test_vfs_cold_open_sends_only_reads(replica):
    """Through a recording proxy: the requests a cold open + count(*) costs, all reads."""
    with Proxy(f"http://{replica.server.netloc}") as proxy:
        db = apsw.Connection(f"file:cold.db?vfs={litestream_vfs.VFS_NAME}"
                             f"&replica={urllib.parse.quote(via(proxy, replica), safe='')}",
                             flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        try:
            count = db.execute("SELECT count(*) FROM Track").fetchone()[0]
        finally:
            db.close()
        counts = proxy.counts()
        print(f"\ncold open + count(*): {dict(counts)}, {proxy.sequential_round_trips()} waves")
    truth = apsw.Connection(str(replica.db_path), flags=apsw.SQLITE_OPEN_READONLY)
    assert count == truth.execute("SELECT count(*) FROM Track").fetchone()[0]
    assert set(counts) <= {"PROPFIND", "GET"} and counts["PROPFIND"] >= 1


# -- servers less capable than WsgiDAV ---------------------------------------------
def test_lists_level_by_level_when_infinite_depth_is_refused(replica, quirky):
    store = open_storage(quirky.url(replica.path))
    try:
        assert store.list_files() == on_disk(replica)
        assert store.counters.lists == 1 + 10  # the refused request, then one per level
        assert store.list_files((0, 1)) == [o for o in on_disk(replica) if o.level in (0, 1)]
        assert store.counters.lists == 11 + 2  # the refusal is remembered
    finally:
        store.close()


def test_whole_file_answer_to_a_range_is_sliced_and_counted(replica, quirky):
    store = open_storage(quirky.url(replica.path))
    try:
        obj = max(on_disk(replica), key=lambda o: o.size)
        data = (replica.directory / "ltx" / str(obj.level) / obj.name).read_bytes()
        assert store.read_range(obj, 100, 50) == data[100:150]
        assert isinstance(store, WebDAVStorage) and store.ranges_ignored == 1
        assert store.counters.bytes_fetched >= 150 and store.counters.gets == 1
    finally:
        store.close()


# -- error paths -------------------------------------------------------------------
def test_wrong_password_is_access_denied(replica):
    store = open_storage(replica.server.url(replica.path, password="not-the-password"))
    with pytest.raises(StorageError, match="access denied.*HTTP 401.*check credentials") as caught:
        store.list_files()
    assert store.url in str(caught.value) and "not-the-password" not in str(caught.value)
    store.close()


def test_no_credentials_is_access_denied(replica, monkeypatch):
    monkeypatch.delenv(USERNAME_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    store = open_storage(replica.server.url(replica.path, with_credentials=False))
    with pytest.raises(StorageError, match="access denied"):
        store.list_files()
    store.close()


def test_credentials_from_the_environment(replica, monkeypatch):
    monkeypatch.setenv(USERNAME_ENV, replica.server.username)
    monkeypatch.setenv(PASSWORD_ENV, replica.server.password)
    store = open_storage(replica.server.url(replica.path, with_credentials=False))
    assert store.list_files() == on_disk(replica)
    store.close()


def test_credentials_prefer_the_url():
    location = parse_replica_url("webdav://me:s%3Acret@host/db")
    env = {USERNAME_ENV: "env-user", PASSWORD_ENV: "env-pass"}
    assert credentials(location, env) == ("me", "s:cret")
    assert credentials(parse_replica_url("webdav://host/db"), env) == ("env-user", "env-pass")
    assert credentials(parse_replica_url("webdav://host/db"), {}) is None


def test_missing_replica_directory(dav):
    store = open_storage(dav.url("replicas/nothing-here.db"))
    with pytest.raises(ReplicaError, match=rf"no replica at {re.escape(store.url)}: "):
        store.list_files()
    store.close()


def test_existing_directory_without_ltx_is_an_empty_replica(dav):
    (dav.root / "replicas" / "empty.db").mkdir(parents=True)
    store = open_storage(dav.url("replicas/empty.db"))
    assert store.list_files() == []
    store.close()


def test_missing_file_names_the_object(replica, storage):
    gone = LtxObject(0, 0xFFFF0, 0xFFFF0, 100)
    for read in (lambda: storage.read_all(gone), lambda: storage.read_range(gone, 0, 10)):
        with pytest.raises(ObjectNotFound, match=re.escape(f"{storage.url}/ltx/0/{gone.name} not found")):
            read()


def test_reading_past_the_end_is_truncation(replica, storage):
    real = on_disk(replica)[0]
    inflated = LtxObject(real.level, real.min_txid, real.max_txid, real.size + 10)
    with pytest.raises(StorageError, match=f"{real.name}.*truncated"):
        storage.read_range(inflated, real.size + 5, 5)
    with pytest.raises(StorageError, match=f"{real.name} is truncated: wanted {inflated.size} bytes"):
        storage.read_all(inflated)


def test_server_down_is_retried_then_reported(monkeypatch):
    monkeypatch.setattr(webdav_module, "BACKOFF", Backoff(attempts=3, base_seconds=0.01))
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
def test_transient_faults_are_retried(replica, kind, monkeypatch):
    monkeypatch.setattr(webdav_module, "BACKOFF", Backoff(attempts=4, base_seconds=0.01))
    obj = max(on_disk(replica), key=lambda o: o.size)
    expected = (replica.directory / "ltx" / str(obj.level) / obj.name).read_bytes()
    with Proxy(f"http://{replica.server.netloc}") as proxy:
        store = open_storage(via(proxy, replica))
        try:
            proxy.set_fault(FaultPlan(kind, 1.0, kinds=frozenset({"GET"}), status=503))
            with pytest.raises(StorageError, match="gave up after 4 attempts"):
                store.read_all(obj)
            assert proxy.counts()["GET"] == 4
            proxy.set_fault(FaultPlan(kind, 0.5, seed=3, kinds=frozenset({"GET"}), status=503))
            assert store.read_all(obj) == expected
        finally:
            store.close()


def test_webdavs_speaks_tls(replica):
    store = open_storage(f"webdavs://{replica.server.netloc}/{replica.path}")
    with pytest.raises(StorageError, match="TLS error talking to https://127.0.0.1"):
        store.list_files()
    store.close()


def test_paths_are_percent_encoded(replica, dav):
    odd = dav.root / "odd dir" / "ünï #1.db"
    shutil.copytree(replica.directory, odd)
    store = open_storage(dav.url(urllib.parse.quote("odd dir/ünï #1.db")))
    files = store.list_files()
    assert files == on_disk(replica)
    assert store.read_range(files[0], 0, 4) == b"LTX1"
    store.close()


# -- the multistatus parser, on bodies WsgiDAV really sends ---------------------------
def test_parser_on_an_infinite_depth_listing(replica):
    ltx_path = f"/{replica.path}/ltx"
    status, body = raw_propfind(replica.server, ltx_path + "/", "infinity")
    assert status == 207
    entries = parse_multistatus(body)
    disk = {"/" + str(p.relative_to(replica.server.root)): p
            for p in replica.directory.joinpath("ltx").rglob("*")}
    assert {e.path.rstrip("/") for e in entries} == set(disk) | {ltx_path}
    for entry in entries:
        path = disk.get(entry.path.rstrip("/"))
        if path is not None:
            assert entry.is_collection == path.is_dir()
            assert entry.size == (None if path.is_dir() else path.stat().st_size)
    assert sorted(ltx_objects(entries, ltx_path, "webdav://x")) == on_disk(replica)


def test_parser_on_a_level_listing_with_foreign_files(replica, dav):
    level = replica.directory / "ltx" / "0"
    (level / "notes.txt").write_text("not an LTX file")
    (level / "0000000000000001-0000000000000001.ltx.tmp").write_bytes(b"partial upload")
    try:
        status, body = raw_propfind(replica.server, f"/{replica.path}/ltx/0/", "1")
    finally:
        (level / "notes.txt").unlink()
        (level / "0000000000000001-0000000000000001.ltx.tmp").unlink()
    assert status == 207
    entries = parse_multistatus(body)
    assert len(entries) == 1 + len(list(level.iterdir())) + 2
    assert sorted(ltx_objects(entries, f"/{replica.path}/ltx", "webdav://x")) == \
        [o for o in on_disk(replica) if o.level == 0]


def test_parser_rejects_what_is_not_a_multistatus(replica):
    status, body = raw_propfind(replica.server, "/no/such/dir/", "1")
    assert status == 404
    with pytest.raises(ValueError, match="not a WebDAV multistatus body"):
        parse_multistatus(body)
