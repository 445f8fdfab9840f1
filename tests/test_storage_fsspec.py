"""gs://, abs:// and sftp:// replicas (one fsspec adapter) against real servers and real Litestream.

Litestream 0.5.17 replicates a WAL-mode Chinook to an asyncssh SFTP server,
to Azurite and to gcp-storage-emulator while a few transactions commit; our
adapter must list exactly the files the store holds, read them byte for byte,
and rebuild every restorable state identically to `litestream restore`,
directly and through the VFS.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import sys
import urllib.parse
from collections.abc import Iterator

import pytest

from litestream_vfs.errors import ObjectNotFound, ReplicaError, StorageError
from litestream_vfs.ltx.file import decode_file
from litestream_vfs.executors import Executors
from litestream_vfs.pagecache import PageCache
from litestream_vfs.replica import Replica
from litestream_vfs.restore import restore
from litestream_vfs.storage import open_storage, parse_replica_url
from litestream_vfs.storage import fsspec_store
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.storage.fsspec_store import FsspecStorage, abs_target, gs_target, sftp_target
from litestream_vfs.storage.retry import Backoff

from support.binaries import litestream_binary
from support.fsspec_servers import (SFTP_PASSWORD, StoreReplica, free_port,
                                    replicate_to, running_azurite, running_gcs_emulator,
                                    running_sftp)
from support.truth import assert_steps_read_like_restore
from support.workload import STEPS

VERSION = "0.5.17"
WORKLOAD = STEPS[:4]
COMPARED_TABLES = ("Artist", "Track", "PlaylistTrack", "Genre")
SCHEMES = ("sftp", "abs", "gs")
_LAUNCHERS = {"sftp": lambda tmp: running_sftp(tmp / "sftp-root"),
              "abs": lambda tmp: running_azurite(tmp / "azurite"),
              "gs": lambda tmp: running_gcs_emulator(tmp / "gcs")}


@pytest.fixture(scope="module", params=SCHEMES)
def server(request, tmp_path_factory):
    with _LAUNCHERS[request.param](tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="module")
def replica(server, tmp_path_factory) -> StoreReplica:
    return replicate_to(server, "replicas/chinook.db", tmp_path_factory.mktemp("work"),
                        WORKLOAD, litestream_binary(VERSION))


@pytest.fixture
def server_env(server, monkeypatch) -> None:
    """The keys / emulator host both Litestream and our package read from the environment."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def storage(replica, server_env) -> Iterator[FsspecStorage]:
    store = open_storage(replica.url)
    assert isinstance(store, FsspecStorage)
    yield store
    store.close()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the layout Litestream writes ----------------------------------------------------
def test_litestream_writes_the_file_layout(replica):
    names = [name for name in replica.contents() if name.endswith(".ltx")]
    assert names and all(n.split("/")[0] == "ltx" and n.split("/")[1].isdigit() for n in names)
    assert {0, 1, 9} <= {int(n.split("/")[1]) for n in names}


def test_lists_what_the_store_holds(replica, storage):
    assert storage.list_files() == replica.ltx_files()
    assert storage.counters.lists == 1
    assert storage.list_files((0,)) == [o for o in replica.ltx_files() if o.level == 0]


def test_a_file_put_anew_with_the_same_name_and_size_is_listed_as_another_version(replica, storage):
    """The version tag keys cached indexes: GCS generations and Azure ETags tell a re-created
    file from the old one; SFTP lists none (documented), so there name and size are all."""
    obj = max(replica.ltx_files(), key=lambda o: o.size)
    name = f"ltx/{obj.level}/{obj.name}"
    data = replica.contents()[name]
    before = {o: o.tag for o in storage.list_files()}
    altered = data[:-1] + bytes([data[-1] ^ 0xFF])
    try:
        replica.server.write(replica.path, name, altered)
        after = {o: o.tag for o in storage.list_files()}
    finally:
        replica.server.write(replica.path, name, data)
    assert after.keys() == before.keys()
    if replica.server.scheme == "sftp":
        assert set(before.values()) == set(after.values()) == {""}
    else:
        assert all(before.values()) and after[obj] != before[obj]
        assert {o: t for o, t in after.items() if o != obj} == {o: t for o, t in before.items() if o != obj}


def test_url_carries_no_credentials(replica, storage):
    assert SFTP_PASSWORD not in storage.url and urllib.parse.quote(SFTP_PASSWORD, safe="") not in storage.url
    assert storage.url.startswith(f"{replica.server.scheme}://") and replica.path in storage.url


def test_reads_whole_files_and_exact_ranges(replica, storage):
    contents = replica.contents()
    files = replica.ltx_files()
    for obj in files:
        data = storage.read_all(obj)
        assert data == contents[f"ltx/{obj.level}/{obj.name}"]
        header = decode_file(data, str(obj)).header  # verifies the file checksum too
        assert (header.min_txid, header.max_txid) == (obj.min_txid, obj.max_txid)
        assert storage.read_range(obj, 7, obj.size - 10) == data[7:-3]
        assert storage.read_range(obj, obj.size - 1, 1) == data[-1:]
    assert storage.counters.gets == 3 * len(files)
    assert storage.counters.bytes_fetched == sum(2 * o.size - 9 for o in files)


def test_concurrent_ranged_reads(replica, storage):
    contents = replica.contents()
    objs = replica.ltx_files()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda o: storage.read_range(o, 100, min(4096, o.size - 100)), objs * 4))
    assert got == [contents[f"ltx/{o.level}/{o.name}"][100:4196] for o in objs * 4]


# -- restoring every state, as Litestream does ----------------------------------------
def test_restore_matches_litestream_for_every_txid(replica, storage, tmp_path, server_env):
    executors = Executors(io=8, tasks=4)
    try:
        rep = Replica(storage, PageCache(64 << 20), executors)
        states = rep.chains_for().states
        assert list(states) == sorted({o.max_txid for o in replica.ltx_files()})
        assert {txid for _, txid in replica.step_txids} <= set(states)
        for txid in states:
            ours, theirs = tmp_path / f"ours-{txid}.db", tmp_path / f"litestream-{txid}.db"
            restore(rep, rep.state(txid), str(ours))
            replica.litestream_restore(theirs, txid)
            assert sha256(ours) == sha256(theirs), f"TXID {txid:016x}"
    finally:
        executors.shutdown()


def test_vfs_reads_each_step(replica, tmp_path, server_env):
    assert_steps_read_like_restore(replica.url, replica.step_txids, replica.litestream_restore, tmp_path,
                                   COMPARED_TABLES)


# -- error paths --------------------------------------------------------------------
def test_missing_replica(server, server_env):
    store = open_storage(server.url("replicas/nothing-here.db"))
    with pytest.raises(ReplicaError, match=rf"no replica at {re.escape(store.url)}"):
        store.list_files()
    store.close()


def test_missing_file_names_the_object(storage):
    gone = LtxObject(0, 0xFFFF0, 0xFFFF0, 100)
    shown = f"{storage.url.partition('?')[0]}/ltx/0/{gone.name} not found"
    for read in (lambda: storage.read_all(gone), lambda: storage.read_range(gone, 0, 10)):
        with pytest.raises(ObjectNotFound, match=re.escape(shown)):
            read()


def test_reading_past_the_end_is_truncation(replica, storage):
    real = replica.ltx_files()[0]
    inflated = LtxObject(real.level, real.min_txid, real.max_txid, real.size + 10)
    with pytest.raises(StorageError, match=f"{real.name} is truncated: wanted 10 bytes"):
        storage.read_range(inflated, real.size, 10)
    with pytest.raises(StorageError, match=f"{real.name} is truncated: wanted {inflated.size} bytes"):
        storage.read_all(inflated)


def test_wrong_credentials_are_access_denied(replica, server_env, monkeypatch):
    if replica.server.scheme == "gs":
        # The emulator accepts every request, so feed the store the error Google's API gives.
        from gcsfs.retry import HttpError

        store = open_storage(replica.url)
        denied = store._translate(HttpError({"code": 403, "message": "Forbidden"}), store.url, 1)
        assert isinstance(denied, StorageError) and "access denied" in str(denied)
        assert "check credentials" in str(denied) and store.url in str(denied)
        return
    if replica.server.scheme == "sftp":
        url, secret = replica.server.url(replica.path, "not-the-password"), "not-the-password"
    else:
        secret = "A" * 86 + "=="
        monkeypatch.setenv(fsspec_store.AZURE_KEY_ENV, secret)
        url = replica.url
    store = open_storage(url)
    with pytest.raises(StorageError, match="access denied.*check credentials") as caught:
        store.list_files()
    assert store.url in str(caught.value) and secret not in str(caught.value)
    store.close()


@pytest.mark.parametrize("scheme", ["sftp"])
def test_server_down_is_retried_then_reported(scheme, monkeypatch):
    monkeypatch.setattr(fsspec_store, "SFTP_BACKOFF", Backoff(attempts=3, base_seconds=0.01))
    port = free_port()  # nobody listens there
    store = open_storage(f"sftp://user:secret@127.0.0.1:{port}/db")
    with pytest.raises(StorageError, match=rf"cannot read sftp://127.0.0.1:{port}/db/ltx/0/"
                                           r".*gave up after 3 attempts") as caught:
        store.read_range(LtxObject(0, 1, 1, 100), 0, 10)
    assert "secret" not in str(caught.value)
    assert store.counters.gets == 3
    store.close()


# -- URL forms and settings (no I/O) -------------------------------------------------------
def test_sftp_paths_are_absolute_and_settings_come_from_url_and_environment():
    location = parse_replica_url("sftp://me:pw@host:2222/srv/backups/db?key-path=/keys/id")
    target = sftp_target(location, {})
    assert target.root == "/srv/backups/db"
    assert target.url == "sftp://host:2222/srv/backups/db?key-path=/keys/id"
    assert target.secrets == ("pw",) and target.ranges_by_open
    from_env = sftp_target(parse_replica_url("sftp://me@host/db"),
                           {fsspec_store.SFTP_PASSWORD_ENV: "envpw"})
    assert from_env.secrets == ("envpw",)
    with pytest.raises(ReplicaError, match="needs a user"):
        sftp_target(parse_replica_url("sftp://host/db"), {})
    with pytest.raises(ReplicaError, match="host-key is not an SSH public key"):
        sftp_target(parse_replica_url("sftp://me@host/db?host-key=nonsense"), {})


def test_abs_url_shows_the_account_and_refuses_keys_in_the_url():
    target = abs_target(parse_replica_url("abs://acct@container/a/db"), {})
    assert (target.url, target.root) == ("abs://acct@container/a/db", "container/a/db")
    with pytest.raises(ReplicaError, match="not in the URL"):
        abs_target(parse_replica_url("abs://acct:key@container/db"), {})
    with pytest.raises(ReplicaError, match="name the storage account"):
        abs_target(parse_replica_url("abs://container/db"), {})


def test_gs_root_is_bucket_and_path():
    target = gs_target(parse_replica_url("gs://bucket/a/db"), {})
    assert (target.url, target.root, target.ranges_by_open) == ("gs://bucket/a/db", "bucket/a/db", False)


@pytest.mark.parametrize("url, module, extra", [("gs://bucket/db", "gcsfs", "gcs"),
                                                ("abs://acct@container/db", "adlfs", "azure"),
                                                ("sftp://me@host/db", "sshfs", "sftp")])
def test_missing_library_names_the_extra(url, module, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ReplicaError, match=re.escape(f"pip install 'litestream-apsw[{extra}]'")):
        open_storage(url)
