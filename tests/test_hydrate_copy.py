"""Judging an existing local copy before trusting it: a real restored state, then damaged ways."""

from __future__ import annotations

import os

from litestream_vfs.connect import open_replica
from litestream_vfs.hydrate_local import Meta
from litestream_vfs.hydrate_owner import as_database_page1
from litestream_vfs.hydrate_copy import distrust
from litestream_vfs.restore import restore


def test_a_copy_is_trusted_only_when_everything_matches(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    state = replica.latest()
    path = tmp_path / "copy.db"
    restore(replica, state, str(path))
    data = path.read_bytes()
    path.write_bytes(as_database_page1(data[:state.page_size]) + data[state.page_size:])
    meta = Meta(replica.storage.url, state.txid, state.page_size, state.commit, os.stat(path).st_ino, ())
    meta_path = str(path) + ".meta.json"
    assert distrust(str(path), meta_path, meta, replica, ()) is None
    assert "no usable" in distrust(str(path), meta_path, None, replica, ())
    assert "was built from" in distrust(str(path), meta_path, Meta("file:///elsewhere", *list(meta.__dict__.values())[1:]),
                                        replica, ())
    with open(path, "r+b") as f:
        f.truncate(state.db_size - state.page_size)
    assert f"expected {state.db_size}" in distrust(str(path), meta_path, meta, replica, ())
