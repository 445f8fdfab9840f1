"""A directory of replicas in one listing: the layout parser, and every backend against real
Litestream directory replication (file, S3 on SeaweedFS, WebDAV, SFTP through fsspec)."""

from __future__ import annotations

from pathlib import Path

import pytest

from litestream_vfs.errors import ReplicaError
from litestream_vfs.fleet_query import fleet
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.storage.tree import (LTX_LAYOUT, S3_LAYOUT, Listed, child_url, group_databases,
                                         list_databases, open_directory, split_object)
from litestream_vfs.storage.url import parse_directory_url
from support.fleet import CORRUPT
from support.fsspec_servers import running_sftp
from support.webdav import finite_depth_only, running_webdav

NAME = "0000000000000001-0000000000000003.ltx"
COUNTS = "SELECT count(*), sum(qty) FROM items"


@pytest.mark.parametrize("relative, layout, expected", [
    (f"orders.db/ltx/0/{NAME}", LTX_LAYOUT, ("orders.db", 0)),
    (f"eu/acme/orders.db/ltx/9/{NAME}", LTX_LAYOUT, ("eu/acme/orders.db", 9)),
    (f"orders.db/0002/{NAME}", S3_LAYOUT, ("orders.db", 2)),
    (f"eu/orders.db/0009/{NAME}", S3_LAYOUT, ("eu/orders.db", 9)),
    (f"ltx/0/{NAME}", LTX_LAYOUT, None),  # a single replica, not a directory of them
    (f"0000/{NAME}", S3_LAYOUT, None),
    (f"orders.db/ltx/x/{NAME}", LTX_LAYOUT, None),
    (f"orders.db/0/{NAME}", S3_LAYOUT, None),  # S3 levels have four digits
    (f"orders.db/ltx/0/{NAME}", S3_LAYOUT, None),  # wrong layout for the store
    ("orders.db/ltx/0/notes.txt", LTX_LAYOUT, None),
    (f"orders.db/ltx/0/{NAME}.tmp", LTX_LAYOUT, None),
    (f"orders.db/ltx/0/{NAME}\n", LTX_LAYOUT, None),  # whole names only, no trailing newline
    (f"orders.db/ltx/0\n/{NAME}", LTX_LAYOUT, None),
    (f"orders.db/0002\n/{NAME}", S3_LAYOUT, None),
])
def test_split_object(relative, layout, expected):
    parsed = split_object(relative, layout, 77, "v1")
    if expected is None:
        assert parsed is None
    else:
        assert parsed == (expected[0], LtxObject(expected[1], 1, 3, 77)) and parsed[1].tag == "v1"


def test_group_databases_sorts_by_database_and_ignores_junk():
    entries = [Listed(f"b.db/ltx/0/{NAME}", 5), Listed(f"a.db/ltx/9/{NAME}", 9), Listed("a.db/README", 1),
               Listed(f"a.db/ltx/0/{NAME}", 3)]
    assert group_databases(entries, LTX_LAYOUT) == {
        "a.db": [LtxObject(0, 1, 3, 3), LtxObject(9, 1, 3, 9)], "b.db": [LtxObject(0, 1, 3, 5)]}


def test_directory_urls_keep_their_query_and_children_append_paths():
    location = parse_directory_url("s3://bucket/dbs/?endpoint=http://127.0.0.1:9000&region=x")
    assert (location.host, location.path) == ("bucket", "dbs")
    assert parse_directory_url("s3://bucket/").path == ""
    assert parse_directory_url("/srv/replicas/").path == "/srv/replicas"
    assert child_url("s3://b/dbs?region=x", "eu/a b.db") == "s3://b/dbs/eu/a%20b.db?region=x"
    assert child_url("file:///srv/r", "a.db") == "file:///srv/r/a.db"


def test_a_directory_without_replicas_is_one_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ReplicaError, match="no replicas under"):
        list_databases(open_directory(f"{tmp_path}/"))
    with pytest.raises(ReplicaError, match="does not exist"):
        list_databases(open_directory(f"{tmp_path}/missing/"))


def versions(databases: dict[str, list[LtxObject]]) -> dict[str, list[tuple[LtxObject, str]]]:
    """Each database's files with their version tags (which LtxObject equality ignores)."""
    return {name: [(o, o.tag) for o in files] for name, files in databases.items()}


def expected_layout(fleet_replica, dir_url: str | None = None) -> dict[str, list[tuple[LtxObject, str]]]:
    """Each database's files, with their version tags, as its own per-replica listing gives them:
    a fleet publishes a database's share of the directory listing as that replica's listing."""
    store = open_directory(dir_url or fleet_replica.dir_url)
    try:
        return versions({name: store.child(name).list_files() for name in (*fleet_replica.names, CORRUPT)})
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_one_listing_finds_every_database_and_every_level(fleet_replicas, backend, monkeypatch):
    fleet_replica = fleet_replicas[backend]
    for key, value in fleet_replica.env.items():
        monkeypatch.setenv(key, value)
    store = open_directory(fleet_replica.dir_url)
    try:
        databases = list_databases(store)
        assert store.counters.lists == 1
    finally:
        store.close()
    assert versions(databases) == expected_layout(fleet_replica)
    assert all(o.tag for files in databases.values() for o in files)  # S3 ETags, local inodes
    assert {f.level for files in databases.values() for f in files} >= {0, 1, 9}
    assert any("/" in name for name in databases)  # recursive: eu/tenant-*.db


@pytest.mark.parametrize("quirks", [(), (finite_depth_only,)], ids=["depth-infinity", "depth-1"])
def test_webdav_directory_in_one_propfind_or_one_per_directory(fleet_replicas, quirks):
    fleet_replica = fleet_replicas["file"]
    root = fleet_replica.location.root
    with running_webdav(Path(root), quirks=quirks) as server:
        store = open_directory(server.url("") + "/")
        try:
            databases = list_databases(store)
            lists = store.counters.lists
        finally:
            store.close()
        # Every database read through the directory's one connection pool: the same rows as from disk.
        through_dav = fleet(server.url("") + "/", COUNTS, match="eu/*")
        assert versions(databases) == expected_layout(fleet_replica, server.url("") + "/")
    assert all(o.tag for files in databases.values() for o in files)  # ETags
    if not quirks:
        assert lists == 1
    assert through_dav.table.equals(fleet(fleet_replica.dir_url, COUNTS, match="eu/*").table)


def test_sftp_directory_through_fsspec(fleet_replicas):
    fleet_replica = fleet_replicas["file"]
    with running_sftp(Path(fleet_replica.location.root)) as server:
        store = open_directory(server.url("/") + "/")
        try:
            databases = list_databases(store)
        finally:
            store.close()
        through_sftp = fleet(server.url("/") + "/", COUNTS, match="eu/*")  # on the directory's filesystem
        assert versions(databases) == expected_layout(fleet_replica, server.url("/") + "/")
    assert through_sftp.table.equals(fleet(fleet_replica.dir_url, COUNTS, match="eu/*").table)
