"""Replica URL parsing: every accepted form, the directory rule, bad URLs."""

from __future__ import annotations

import os
import re

import pytest

from litestream_vfs.errors import ReplicaError
from litestream_vfs.storage import open_storage, parse_replica_url
from litestream_vfs.storage.file import FileStorage
from litestream_vfs.storage.s3 import S3Settings, endpoint_url, s3_settings
from litestream_vfs.storage.url import ReplicaLocation


@pytest.mark.parametrize("url, db_name, scheme, host, path, options", [
    ("s3://bucket/chinook.db", None, "s3", "bucket", "chinook.db", ()),
    ("s3://bucket/path/to/db", "ignored.db", "s3", "bucket", "path/to/db", ()),
    ("s3://bucket//double//slash/", "x.db", "s3", "bucket", "double/slash/x.db", ()),
    ("s3://bucket/dbs/", "orders.db", "s3", "bucket", "dbs/orders.db", ()),
    ("s3://bucket/dbs/", "/srv/data/orders.db", "s3", "bucket", "dbs/orders.db", ()),
    ("s3://bucket/", "orders.db", "s3", "bucket", "orders.db", ()),
    ("s3://bucket", None, "s3", "bucket", "", ()),
    ("s3://my.bucket-1/db?endpoint=127.0.0.1:9000&region=eu-west-1&forcePathStyle=true", None,
     "s3", "my.bucket-1", "db",
     (("endpoint", "127.0.0.1:9000"), ("region", "eu-west-1"), ("forcePathStyle", "true"))),
    ("s3://b/db?force-path-style=true", None, "s3", "b", "db", (("forcePathStyle", "true"),)),
    ("s3://b/dbs/?endpoint=http://h:1", "a.db", "s3", "b", "dbs/a.db", (("endpoint", "http://h:1"),)),
    ("S3://b/db", None, "s3", "b", "db", ()),
    ("file:///abs/replica", None, "file", "", "/abs/replica", ()),
    ("file://localhost/abs/replica", None, "file", "", "/abs/replica", ()),
    ("file:///abs/with%20space", None, "file", "", "/abs/with space", ()),
    ("file:///replicas/", "orders.db", "file", "", "/replicas/orders.db", ()),
    ("/abs/plain", None, "file", "", "/abs/plain", ()),
    ("/abs/dir/", "orders.db", "file", "", "/abs/dir/orders.db", ()),
])
def test_accepted_forms(url, db_name, scheme, host, path, options):
    assert parse_replica_url(url, db_name) == ReplicaLocation(scheme, host, path, options)


@pytest.mark.parametrize("relative", ["replica", "a/b/replica", "../sibling/replica"])
def test_relative_plain_path_becomes_absolute(relative, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = parse_replica_url(relative)
    assert location.scheme == "file"
    assert location.path == os.path.normpath(os.path.join(str(tmp_path), relative))


@pytest.mark.parametrize("url, culprit", [
    ("", "empty"),
    ("   ", "empty"),
    ("ftp://bucket/db", "ftp://bucket/db"),
    ("http://host/db", "http://host/db"),
    ("s3:///db", "s3:///db"),
    ("s3://bad bucket/db", "bad bucket"),
    ("s3://b/../escape", "'..'"),
    ("s3://b/a/%2E%2E/b", "'..'"),
    ("file:///a/../b", "'..'"),
    ("file://otherhost/x", "file://otherhost/x"),
    ("file:relative/path", "file:relative/path"),
])
def test_rejected_urls_name_the_culprit(url, culprit):
    with pytest.raises(ReplicaError, match="(?i)" + re.escape(culprit)):
        parse_replica_url(url, "x.db")


@pytest.mark.parametrize("url", ["s3://b/dbs/", "/replicas/", "file:///replicas/"])
@pytest.mark.parametrize("db_name", [None, "", "/some/dir/"])
def test_directory_of_replicas_needs_a_db_name(url, db_name):
    with pytest.raises(ReplicaError, match="directory of replicas"):
        parse_replica_url(url, db_name)


@pytest.mark.parametrize("url, missing", [("s3://", "no bucket name"), ("s3:///db", "no bucket name"),
                                          ("gs://", "no bucket name"), ("abs://", "no container name"),
                                          ("webdav://", "no host name"), ("webdavs:///db", "no host name"),
                                          ("sftp://user@/db", "no host name")])
@pytest.mark.parametrize("db_name", [None, "x.db"])
def test_a_missing_bucket_or_host_is_named_before_the_directory_rule(url, missing, db_name):
    with pytest.raises(ReplicaError, match=f"^replica URL {re.escape(repr(url))} has {missing} \\(e.g. "):
        parse_replica_url(url, db_name)


def test_unknown_scheme_lists_supported_ones():
    with pytest.raises(ReplicaError, match="supported: abs, file, gs, s3, sftp, webdav, webdavs"):
        open_storage("ftp://host/db")


def test_printable_url_hides_credentials():
    location = parse_replica_url("s3://someone:pw456@b/db?endpoint=127.0.0.1:9000")
    assert (location.username, location.password) == ("someone", "pw456")
    for text in (str(location), repr(location)):
        assert "someone" not in text and "pw456" not in text
    assert str(location) == "s3://b/db?endpoint=127.0.0.1:9000"


def test_s3_userinfo_is_refused_without_echoing_it():
    location = parse_replica_url("s3://akid123:pw456@bucket/db")
    with pytest.raises(ReplicaError) as info:
        s3_settings(location, {})
    assert "akid123" not in str(info.value) and "pw456" not in str(info.value)


def test_open_storage_picks_the_file_backend(tmp_path):
    storage = open_storage(str(tmp_path) + "/", "orders.db")
    assert isinstance(storage, FileStorage)
    assert storage.root == str(tmp_path / "orders.db")


@pytest.mark.parametrize("endpoint, expected", [
    ("127.0.0.1:9000", "http://127.0.0.1:9000"),
    ("localhost:8333", "http://localhost:8333"),
    ("[::1]:8333", "http://[::1]:8333"),
    ("minio.example.com", "https://minio.example.com"),
    ("http://minio.example.com/", "http://minio.example.com"),
    ("https://127.0.0.1:9000", "https://127.0.0.1:9000"),
])
def test_endpoint_scheme_defaults(endpoint, expected):
    assert endpoint_url(endpoint) == expected


@pytest.mark.parametrize("url, environ, expected", [
    ("s3://b/p/db", {},
     S3Settings("b", "p/db", None, None, False)),
    ("s3://b/db?endpoint=127.0.0.1:1", {},
     S3Settings("b", "db", "http://127.0.0.1:1", "us-east-1", True)),
    ("s3://b/db?endpoint=s3.example.com&region=eu-west-3&forcePathStyle=false", {},
     S3Settings("b", "db", "https://s3.example.com", "eu-west-3", False)),
    ("s3://b/db?force-path-style=true", {},
     S3Settings("b", "db", None, None, True)),
    ("s3://b/db", {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2"},
     S3Settings("b", "db", None, None, True)),
    ("s3://b/db", {"LITESTREAM_ACCESS_KEY_ID": "LK", "LITESTREAM_SECRET_ACCESS_KEY": "LS"},
     S3Settings("b", "db", None, None, False, "LK", "LS")),
    ("s3://b/db", {"AWS_ACCESS_KEY_ID": "AK", "LITESTREAM_ACCESS_KEY_ID": "LK",
                   "LITESTREAM_SECRET_ACCESS_KEY": "LS"},
     S3Settings("b", "db", None, None, False)),
])
def test_s3_settings(url, environ, expected):
    settings = s3_settings(parse_replica_url(url), environ)
    assert settings == expected
    assert settings.access_key_id == expected.access_key_id  # compared, though hidden from repr
    assert "LS" not in repr(settings)


def test_s3_bad_flag_value():
    with pytest.raises(ReplicaError, match="forcePathStyle='maybe'"):
        s3_settings(parse_replica_url("s3://b/db?forcePathStyle=maybe"), {})
