"""The WebDAV backend against a real WebDAV server (WsgiDAV) and real Litestream.

Litestream 0.5.17 replicates a WAL-mode Chinook through WsgiDAV while a few
transactions commit; our backend must list exactly the files on the server's
disk, read them byte for byte, and let the package rebuild every restorable
state identically to `litestream restore`, directly and through the VFS.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import shutil
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
from litestream_vfs.storage import open_storage
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.storage.webdav import WebDAVStorage, ltx_objects, parse_multistatus

from support.binaries import litestream_binary
from support.proxy import Proxy
from support.replicas import run_restore
from support.webdav import finite_depth_only, on_disk, ranges_ignored, running_webdav, via
from support.truth import assert_steps_read_like_restore

VERSION = "0.5.17"
COMPARED_TABLES = ("Artist", "Track", "PlaylistTrack", "Genre")


@pytest.fixture(scope="module")
def quirky(webdav_replica, tmp_path_factory):
    """A second server on the same files that refuses infinite depth and ignores Range."""
    with running_webdav(webdav_replica.server.root, quirks=(finite_depth_only, ranges_ignored)) as server:
        yield server


@pytest.fixture
def storage(webdav_replica):
    store = open_storage(webdav_replica.url)
    yield store
    store.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
def test_litestream_writes_the_file_layout(webdav_replica):
    relative = sorted(str(p.relative_to(webdav_replica.directory)) for p in webdav_replica.directory.rglob("*.ltx"))
    assert relative and all(p.split("/")[0] == "ltx" and p.split("/")[1].isdigit() for p in relative)
    levels = {int(p.split("/")[1]) for p in relative}
    assert {0, 1, 9} <= levels  # L0 per commit, L1 compaction, the snapshot level


def test_one_propfind_lists_every_level(webdav_replica, storage):
    assert storage.list_files() == on_disk(webdav_replica)
    assert storage.counters.lists == 1
    assert storage.list_files((0,)) == [o for o in on_disk(webdav_replica) if o.level == 0]


def test_url_carries_no_credentials(webdav_replica, storage):
    assert storage.url == f"webdav://{webdav_replica.server.netloc}/{webdav_replica.path}"
    assert webdav_replica.server.password not in storage.url


def test_reads_whole_files_and_ranges(webdav_replica, storage):
    for obj in on_disk(webdav_replica):
        data = storage.read_all(obj)
        assert data == (webdav_replica.directory / "ltx" / str(obj.level) / obj.name).read_bytes()
        header = decode_file(data, str(obj)).header  # verifies the file checksum too
        assert (header.min_txid, header.max_txid) == (obj.min_txid, obj.max_txid)
        assert storage.read_range(obj, 7, obj.size - 10) == data[7:-3]
        assert storage.read_range(obj, obj.size - 1, 1) == data[-1:]
    files = on_disk(webdav_replica)
    assert storage.counters.gets == 3 * len(files)
    assert storage.counters.bytes_fetched == sum(2 * o.size - 9 for o in files)


# -- restoring every state, as Litestream does -----------------------------------
def test_restore_matches_litestream_for_every_txid(webdav_replica, storage, tmp_path):
    executors = Executors(io=8, tasks=4)
    try:
        rep = Replica(storage, PageCache(64 << 20), executors)
        states = rep.chains_for().states
        assert list(states) == sorted({o.max_txid for o in on_disk(webdav_replica)})
        assert {txid for _, txid in webdav_replica.step_txids} <= set(states)
        for txid in states:
            ours, theirs = tmp_path / f"ours-{txid}.db", tmp_path / f"litestream-{txid}.db"
            restore(rep, rep.state(txid), str(ours))
            run_restore(litestream_binary(VERSION), webdav_replica.url, theirs, {}, txid)
            assert sha256(ours) == sha256(theirs), f"TXID {txid:016x}"
        latest = tmp_path / "ours-latest.db"
        restore(rep, rep.latest(), str(latest))
        assert sha256(latest) == sha256(tmp_path / f"litestream-{states[-1]}.db")
    finally:
        executors.shutdown()


def test_vfs_reads_each_step_through_webdav(webdav_replica, tmp_path):
    binary = litestream_binary(VERSION)
    assert_steps_read_like_restore(webdav_replica.url, webdav_replica.step_txids,
                                   lambda out, txid: run_restore(binary, webdav_replica.url, out, {}, txid),
                                   tmp_path, COMPARED_TABLES)


def test_vfs_cold_open_sends_only_reads(webdav_replica):
    """Through a recording proxy: the requests a cold open + count(*) costs, all reads."""
    with Proxy(f"http://{webdav_replica.server.netloc}") as proxy:
        db = apsw.Connection(f"file:cold.db?vfs={litestream_vfs.VFS_NAME}"
                             f"&replica={urllib.parse.quote(via(proxy, webdav_replica), safe='')}",
                             flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        try:
            count = db.execute("SELECT count(*) FROM Track").fetchone()[0]
        finally:
            db.close()
        counts = proxy.counts()
        print(f"\ncold open + count(*): {dict(counts)}, {proxy.sequential_round_trips()} waves")
    truth = apsw.Connection(str(webdav_replica.db_path), flags=apsw.SQLITE_OPEN_READONLY)
    assert count == truth.execute("SELECT count(*) FROM Track").fetchone()[0]
    assert set(counts) <= {"PROPFIND", "GET"} and counts["PROPFIND"] >= 1


# -- servers less capable than WsgiDAV ---------------------------------------------
def test_lists_level_by_level_when_infinite_depth_is_refused(webdav_replica, quirky):
    store = open_storage(quirky.url(webdav_replica.path))
    try:
        assert store.list_files() == on_disk(webdav_replica)
        assert store.counters.lists == 1 + 10  # the refused request, then one per level
        assert store.list_files((0, 1)) == [o for o in on_disk(webdav_replica) if o.level in (0, 1)]
        assert store.counters.lists == 11 + 2  # the refusal is remembered
    finally:
        store.close()


def test_whole_file_answer_to_a_range_is_sliced_and_counted(webdav_replica, quirky):
    store = open_storage(quirky.url(webdav_replica.path))
    try:
        obj = max(on_disk(webdav_replica), key=lambda o: o.size)
        data = (webdav_replica.directory / "ltx" / str(obj.level) / obj.name).read_bytes()
        assert store.read_range(obj, 100, 50) == data[100:150]
        assert isinstance(store, WebDAVStorage) and store.ranges_ignored == 1
        assert store.counters.bytes_fetched >= 150 and store.counters.gets == 1
    finally:
        store.close()


# -- error paths -------------------------------------------------------------------
def test_missing_replica_directory(webdav_server):
    store = open_storage(webdav_server.url("replicas/nothing-here.db"))
    with pytest.raises(ReplicaError, match=rf"no replica at {re.escape(store.url)}: "):
        store.list_files()
    store.close()


def test_existing_directory_without_ltx_is_an_empty_replica(webdav_server):
    (webdav_server.root / "replicas" / "empty.db").mkdir(parents=True)
    store = open_storage(webdav_server.url("replicas/empty.db"))
    assert store.list_files() == []
    store.close()


def test_missing_file_names_the_object(webdav_replica, storage):
    gone = LtxObject(0, 0xFFFF0, 0xFFFF0, 100)
    for read in (lambda: storage.read_all(gone), lambda: storage.read_range(gone, 0, 10)):
        with pytest.raises(ObjectNotFound, match=re.escape(f"{storage.url}/ltx/0/{gone.name} not found")):
            read()


def test_reading_past_the_end_is_truncation(webdav_replica, storage):
    real = on_disk(webdav_replica)[0]
    inflated = LtxObject(real.level, real.min_txid, real.max_txid, real.size + 10)
    with pytest.raises(StorageError, match=f"{real.name}.*truncated"):
        storage.read_range(inflated, real.size + 5, 5)
    with pytest.raises(StorageError, match=f"{real.name} is truncated: wanted {inflated.size} bytes"):
        storage.read_all(inflated)


def test_paths_are_percent_encoded(webdav_replica, webdav_server):
    odd = webdav_server.root / "odd dir" / "ünï #1.db"
    shutil.copytree(webdav_replica.directory, odd)
    store = open_storage(webdav_server.url(urllib.parse.quote("odd dir/ünï #1.db")))
    files = store.list_files()
    assert files == on_disk(webdav_replica)
    assert store.read_range(files[0], 0, 4) == b"LTX1"
    store.close()


# -- the multistatus parser, on bodies WsgiDAV really sends ---------------------------
def test_parser_on_an_infinite_depth_listing(webdav_replica):
    ltx_path = f"/{webdav_replica.path}/ltx"
    status, body = raw_propfind(webdav_replica.server, ltx_path + "/", "infinity")
    assert status == 207
    entries = parse_multistatus(body)
    disk = {"/" + str(p.relative_to(webdav_replica.server.root)): p
            for p in webdav_replica.directory.joinpath("ltx").rglob("*")}
    assert {e.path.rstrip("/") for e in entries} == set(disk) | {ltx_path}
    for entry in entries:
        path = disk.get(entry.path.rstrip("/"))
        if path is not None:
            assert entry.is_collection == path.is_dir()
            assert entry.size == (None if path.is_dir() else path.stat().st_size)
    tags = [e.etag for e in entries if not e.is_collection]
    assert all(tags) and len(set(tags)) == len(tags)  # each file's version tag, all different
    objects = ltx_objects(entries, ltx_path, "webdav://x")
    assert sorted(objects) == on_disk(webdav_replica) and {o.tag for o in objects} <= set(tags)


def test_parser_on_a_level_listing_with_foreign_files(webdav_replica, webdav_server):
    level = webdav_replica.directory / "ltx" / "0"
    (level / "notes.txt").write_text("not an LTX file")
    (level / "0000000000000001-0000000000000001.ltx.tmp").write_bytes(b"partial upload")
    try:
        status, body = raw_propfind(webdav_replica.server, f"/{webdav_replica.path}/ltx/0/", "1")
    finally:
        (level / "notes.txt").unlink()
        (level / "0000000000000001-0000000000000001.ltx.tmp").unlink()
    assert status == 207
    entries = parse_multistatus(body)
    assert len(entries) == 1 + len(list(level.iterdir())) + 2
    assert sorted(ltx_objects(entries, f"/{webdav_replica.path}/ltx", "webdav://x")) == \
        [o for o in on_disk(webdav_replica) if o.level == 0]


def test_parser_rejects_what_is_not_a_multistatus(webdav_replica):
    status, body = raw_propfind(webdav_replica.server, "/no/such/dir/", "1")
    assert status == 404
    with pytest.raises(ValueError, match="not a WebDAV multistatus body"):
        parse_multistatus(body)
