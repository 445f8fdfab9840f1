"""The owner's jobs (hydrate_owner) on a replica written by real Litestream: trusting or
rebuilding a copy, building it, and bringing an older copy forward in place or through
`.partial`; every copy compared byte for byte with `litestream restore`."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from litestream_vfs import hydrate_owner
from litestream_vfs.connect import open_replica
from litestream_vfs.hydrate_copy import Stopped
from litestream_vfs.hydrate_local import LocalCopy, Meta
from litestream_vfs.hydrate_owner import CopyOwner, as_database_page1, chain_after
from litestream_vfs.replica import Replica
from litestream_vfs.restore import restore
from litestream_vfs.storage.base import Counters, LtxObject


class Owned:
    """A `CopyOwner` of a copy at `path`, with every status and progress report it made."""

    def __init__(self, replica: Replica, path: Path, stop: threading.Event | None = None) -> None:
        self.copy = LocalCopy(str(path))
        self.counters = Counters()
        self.reports: list[str] = []
        self.progress: list[tuple[int, int]] = []
        self.owner = CopyOwner(replica, self.copy, stop or threading.Event(), (self.counters,),
                               self.reports.append, lambda done, total: self.progress.append((done, total)))


def restored_copy(replica: Replica, txid: int, path: Path) -> None:
    """State `txid` at `path` with metadata, as an earlier owner would have left it."""
    state = replica.state(txid)
    restore(replica, state, str(path))
    data = path.read_bytes()
    path.write_bytes(as_database_page1(data))
    meta = Meta(replica.storage.url, txid, state.page_size, state.commit, path.stat().st_ino, ())
    Path(f"{path}.meta.json").write_text(meta.dumps())


def test_chain_after_continues_from_inside_a_compacted_file():
    l0 = [LtxObject(0, t, t, 100) for t in range(5, 13)]
    l1 = LtxObject(1, 5, 12, 300)  # covers base 7 from the inside
    snapshot = LtxObject(9, 1, 12, 10_000)
    assert chain_after([*l0, l1, snapshot], 7, 12) == (l1,)
    assert chain_after(l0, 7, 12) == tuple(l0[3:])
    assert chain_after(l0[:4] + l0[5:], 7, 12) is None  # a gap after 8
    assert chain_after(l0, 12, 12) == ()


def test_a_build_equals_restore_and_readers_see_it_only_once_published(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    path = tmp_path / "copy.db"
    owned = Owned(replica, path)
    owned.owner.take_over()
    assert owned.reports[0] == "checking" and owned.reports[1].startswith("rebuilding: no usable")
    assert owned.copy.owned and owned.copy.txid is None
    owned.owner.catch_up()
    state = replica.latest()
    expected = as_database_page1(file_replica.restore(state.txid).read_bytes())
    assert path.read_bytes() == expected
    assert owned.copy.txid == state.txid and owned.reports[-1] == "ready"
    assert owned.progress[-1][0] == owned.progress[-1][1] > 0
    on_disk = Meta.load(f"{path}.meta.json")
    assert on_disk == owned.copy.meta and on_disk.pending is None
    assert [r["file"] for r in on_disk.files] == [str(obj) for obj in state.plan]
    assert owned.copy.pages(state, 1, state.commit) == expected
    assert not Path(f"{path}.partial").exists()
    before = owned.counters.snapshot()
    owned.owner.catch_up()  # nothing new: nothing fetched
    assert owned.counters.snapshot()["gets"] == before["gets"] and owned.reports[-1] == "ready"
    owned.copy.close()


@pytest.mark.parametrize("step, in_place", [("insert artists", True), ("index bulk", False)])
def test_an_older_copy_is_trusted_then_brought_forward(file_replica, tmp_path, monkeypatch, step, in_place):
    """A smaller older state grows in place; a larger one shrinks through `.partial`."""
    replica = open_replica(file_replica.url)
    base = dict(file_replica.step_txids)[step]
    path = tmp_path / "copy.db"
    restored_copy(replica, base, path)
    inode = path.stat().st_ino
    if not in_place:
        monkeypatch.setattr(hydrate_owner, "IN_PLACE_LIMIT", 0)
    owned = Owned(replica, path)
    owned.owner.take_over()
    assert owned.reports == ["checking"] and owned.copy.txid == base  # trusted: served at once
    latest = replica.latest()
    chain = chain_after(replica.files, base, latest.txid)
    assert chain
    owned.owner.catch_up()
    assert owned.copy.txid == latest.txid
    assert path.read_bytes() == as_database_page1(file_replica.restore(latest.txid).read_bytes())
    assert (path.stat().st_ino == inode) == in_place
    meta = Meta.load(f"{path}.meta.json")
    assert meta is not None and meta.pending is None and meta.txid == latest.txid
    assert [r["file"] for r in meta.files] == [str(obj) for obj in chain]  # only what was applied
    assert owned.copy.pages(latest, 1, latest.commit) == path.read_bytes()
    owned.copy.close()


def test_a_stopped_build_leaves_nothing_half_built(file_replica, tmp_path):
    stop = threading.Event()
    stop.set()
    path = tmp_path / "copy.db"
    owned = Owned(open_replica(file_replica.url), path, stop)
    owned.owner.take_over()
    with pytest.raises(Stopped):
        owned.owner.catch_up()
    assert sorted(os.listdir(tmp_path)) == []  # no copy, no metadata, no `.partial`
    assert owned.copy.txid is None
    owned.copy.close()
