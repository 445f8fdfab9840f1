"""What readers read (hydrate_local.LocalCopy): a read counts only if the copy held exactly the
state asked for before and after it, in the owner and in a follower; states restored from a
replica written by real Litestream."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from litestream_vfs.connect import open_replica
from litestream_vfs.hydrate_local import LocalCopy, Meta
from litestream_vfs.replica import Replica, State
from litestream_vfs.restore import restore
from support.threads import run_threads


def restored(replica: Replica, txid: int, path: Path) -> tuple[State, bytes, Meta]:
    """State `txid` written to `path`, its bytes, and metadata naming it."""
    state = replica.state(txid)
    restore(replica, state, str(path))
    meta = Meta(replica.storage.url, txid, state.page_size, state.commit, path.stat().st_ino, ())
    return state, path.read_bytes(), meta


def test_the_owner_serves_only_the_published_state(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    path = tmp_path / "copy.db"
    state, data, meta = restored(replica, replica.latest().txid, path)
    older = replica.state(dict(file_replica.step_txids)["insert artists"])
    copy = LocalCopy(str(path))
    copy.take_ownership()
    assert copy.pages(state, 1, state.commit) is None  # nothing served yet
    copy.serve(meta, os.open(path, os.O_RDWR))
    assert copy.txid == state.txid and copy.pages(state, 1, state.commit) == data
    assert copy.pages(state, 3, 4) == data[2 * state.page_size:4 * state.page_size]
    assert copy.pages(older, 1, 1) is None  # another state: read remotely
    assert copy.pages(state, 1, state.commit + 1) is None  # past the end: not what was asked
    fd = copy.fd
    with copy.changing():
        assert copy.pages(state, 1, 1) is None and copy.txid is None
        copy.set_fd(os.open(path, os.O_RDWR))
    assert copy.fd == fd  # the same descriptor number now names the reopened file
    assert copy.pages(state, 1, 1) is None  # changed: unused until served again
    copy.serve(meta)
    assert copy.pages(state, 1, 1) == data[:state.page_size]
    copy.close()
    assert copy.txid is None and copy.fd is None and copy.pages(state, 1, 1) is None


def test_a_follower_serves_what_the_metadata_names_and_stops_when_it_changes(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    path = tmp_path / "copy.db"
    meta_path = Path(f"{path}.meta.json")
    copy = LocalCopy(str(path))
    assert copy.follow(replica.storage.url) == f"waiting for another process to build {path}"
    state, data, meta = restored(replica, replica.latest().txid, path)
    for wrong, waiting in [(Meta("file:///elsewhere", *list(meta.__dict__.values())[1:]), "update"),
                           (Meta(**{**meta.__dict__, "pending": state.txid + 1}), "update"),
                           (Meta(**{**meta.__dict__, "inode": meta.inode + 1}), "finish")]:
        meta_path.write_text(wrong.dumps())
        assert copy.follow(replica.storage.url) == f"waiting for another process to {waiting} {path}"
        assert copy.txid is None
    meta_path.write_text(meta.dumps())
    assert copy.follow(replica.storage.url) is None
    assert copy.txid == state.txid and copy.pages(state, 1, state.commit) == data
    assert copy.follow(replica.storage.url) is None and copy.txid == state.txid  # unchanged: kept
    time.sleep(0.01)
    meta_path.write_text(meta.dumps())  # rewritten by the owner: not the metadata we checked
    assert copy.pages(state, 1, 1) is None
    assert copy.follow(replica.storage.url) is None and copy.pages(state, 1, 1) == data[:state.page_size]
    meta_path.unlink()
    assert copy.pages(state, 1, 1) is None
    copy.close()


def test_readers_racing_in_place_updates_only_ever_get_the_state_they_asked_for(file_replica, tmp_path):
    """The owner rewrites the file between two real states in place while readers read it:
    every read that counts is exactly the state it asked for, and readers never wait."""
    replica = open_replica(file_replica.url)
    steps = dict(file_replica.step_txids)
    sides = [restored(replica, steps[name], tmp_path / f"{name}.db") for name in ("insert artists", "final insert")]
    path = tmp_path / "copy.db"
    path.write_bytes(sides[0][1])
    copy = LocalCopy(str(path))
    copy.take_ownership()
    copy.serve(sides[0][2], os.open(path, os.O_RDWR))
    done = threading.Event()
    served = {state.txid: 0 for state, _, _ in sides}

    def owner() -> None:
        try:
            for turn in range(200):
                _, data, meta = sides[(turn + 1) % 2]
                with copy.changing():
                    os.pwrite(copy.fd, data, 0)
                    os.ftruncate(copy.fd, len(data))
                copy.serve(meta)
                time.sleep(0.002)  # a window in which the new state can be read
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set():
            for state, data, _ in sides:
                got = copy.pages(state, 1, state.commit)
                if got is not None:
                    assert got == data, f"TXID {state.txid}: a read mixed two states"
                    served[state.txid] += 1

    run_threads([owner, reader, reader], timeout=60.0)
    assert all(served.values()), served  # both states were read from the copy
    copy.close()
