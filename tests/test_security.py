"""Read-only on the wire, no leaked credentials, no escape from the replica's prefix, TLS on."""

from __future__ import annotations

import logging
import re
import ssl

import apsw
import pytest

from litestream_vfs.cli import main as cli_main
from litestream_vfs.connect import connect, open_replica
from litestream_vfs.errors import LitestreamVFSError, ReplicaError
from litestream_vfs.storage import open_storage, parse_replica_url
from support.proxy import Proxy
from support.truth import through

READ_ONLY_KINDS = {"GET", "LIST", "HEAD"}


@pytest.fixture(scope="module")
def s3_replica(replica_factory, seaweedfs):
    return replica_factory.get("0.5.17", "s3", seaweedfs)


@pytest.fixture
def aliased_credentials(seaweedfs, monkeypatch):
    """Credentials through Litestream's aliases, so our own settings object holds them."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITESTREAM_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("LITESTREAM_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    return seaweedfs.access_key, seaweedfs.secret_key


@pytest.fixture
def proxy(seaweedfs):
    with Proxy(seaweedfs.endpoint_url) as running:
        yield running


def whole_session(url: str, tmp_path, capsys) -> list[str]:
    """Open, query, time travel, history, stats, and every read-only CLI command; the texts shown."""
    shown: list[str] = []
    connection = connect(url)
    txids = [row[0] for row in connection.execute("SELECT txid FROM litestream_history")]
    shown += [repr(row) for row in connection.execute("SELECT * FROM litestream_history")]
    for txid in (txids[0], txids[len(txids) // 2], txids[-1]):
        connection.execute(f"PRAGMA litestream_txid='{txid}'")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    connection.execute("PRAGMA litestream_time='latest'")
    shown += [repr(row) for row in connection.execute("SELECT * FROM litestream_stats")]
    for statement in ("CREATE TABLE t(x)", "PRAGMA litestream_txid='ffffffffffffffff'"):
        with pytest.raises((apsw.Error, LitestreamVFSError)) as info:
            connection.execute(statement)
        shown.append(str(info.value))
    connection.close()
    for args, status in ((["history", url], 0), (["validate", url], 0),
                         (["query", url, "SELECT count(*) FROM sqlite_master"], 0),
                         (["restore", url, "-o", str(tmp_path / "out.db"), "--txid", txids[1]], 0),
                         (["query", url, "SELECT 1", "--txid", "ffffffffffffffff"], 1)):
        assert cli_main(args) == status, args
        out = capsys.readouterr()
        shown += [out.out, out.err]
    return shown


def test_a_whole_session_only_reads_and_leaks_no_credentials(proxy, s3_replica, aliased_credentials,
                                                             tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    url = through(proxy, s3_replica.url)
    shown = whole_session(url, tmp_path, capsys)
    replica = open_replica(url)
    shown += [repr(replica), repr(replica.storage), repr(getattr(replica.storage, "settings", None)),
              str(replica.storage.url)]
    kinds = proxy.counts()
    assert kinds["GET"] > 0 and kinds["LIST"] > 0
    assert set(kinds) <= READ_ONLY_KINDS, f"non-read requests: {kinds}"
    access_key, secret = aliased_credentials
    for text in shown:
        assert secret not in text and access_key not in text, text
    for record in caplog.records:
        message = record.getMessage()
        assert secret not in message, f"{record.name} logged the secret"
        if not record.name.startswith(("botocore", "urllib3")):  # botocore's DEBUG shows the key id
            assert access_key not in message, f"{record.name} logged the access key id"


@pytest.mark.parametrize("status_env", ["wrong secret", "credentials in URL"])
def test_errors_never_show_credentials(s3_replica, proxy, aliased_credentials, monkeypatch, status_env):
    access_key, _ = aliased_credentials
    secret = "not-the-secret-but-private-too"
    url = through(proxy, s3_replica.url)  # a URL no earlier test opened: nothing cached
    if status_env == "wrong secret":
        monkeypatch.setenv("LITESTREAM_SECRET_ACCESS_KEY", secret)
    else:
        url = url.replace("s3://", f"s3://{access_key}:{secret}@")
    with pytest.raises(LitestreamVFSError) as info:
        open_replica(url)
    assert secret not in str(info.value) and access_key not in str(info.value)


@pytest.mark.parametrize("url", [
    "s3://bucket/db/../other",
    "s3://bucket/a%2F..%2Fother",
    "s3://bucket/a/%2E%2E/other",
    "file:///srv/replica/../../etc",
])
def test_dot_segments_cannot_leave_the_prefix(url):
    with pytest.raises(ReplicaError, match=r"\.\."):
        open_storage(url)


def test_odd_keys_in_the_bucket_are_never_read(s3_replica, seaweedfs, monkeypatch):
    """A copy of the replica plus keys that a loose parser could take for LTX files."""
    for key, value in s3_replica.env.items():
        monkeypatch.setenv(key, value)
    client = seaweedfs.boto3_client()
    source = s3_replica.location.root
    copy = source.replace("/", "-") + "-odd"
    names = {}
    for key in s3_replica.location.list_objects():
        target = copy + key[len(source):]
        client.copy_object(Bucket=seaweedfs.bucket, Key=target,
                           CopySource={"Bucket": seaweedfs.bucket, "Key": key})
        names[target] = key.rsplit("/", 1)[-1]
    some_name = next(iter(names.values()))
    for junk in (f"{copy}-sibling/0000/{some_name}", f"{copy}/0000/nested/{some_name}",
                 f"{copy}/0000/{some_name}.tmp", f"{copy}/00/{some_name}", f"{copy}/ltx/0/{some_name}"):
        client.put_object(Bucket=seaweedfs.bucket, Key=junk, Body=b"not an LTX file")
    storage = open_storage(seaweedfs.s3_url(copy))
    listed = storage.list_files()
    assert sorted(o.name for o in listed) == sorted(
        n for n in names.values() if re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{16}\.ltx", n))
    assert [entry.txid for entry in open_replica(seaweedfs.s3_url(copy)).history()] \
        == s3_replica.litestream_txids()


@pytest.mark.parametrize("endpoint", ["https://s3.example.invalid", "s3.example.invalid"])
def test_tls_verification_stays_on(endpoint, monkeypatch):
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    storage = open_storage(f"s3://bucket/db?endpoint={endpoint}")
    assert storage.endpoint.startswith("https://")
    tls = storage.transport._tls_context()
    assert tls.verify_mode == ssl.CERT_REQUIRED and tls.check_hostname
    assert parse_replica_url(f"s3://bucket/db?endpoint={endpoint}").option("endpoint") == endpoint
