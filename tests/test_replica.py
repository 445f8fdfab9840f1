"""The replica's states under a changing listing: real Litestream files, vanishing as compaction does."""

from __future__ import annotations

import gc
import json
import os
import threading
import types
import shutil
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from litestream_vfs.connect import connect, open_replica
from litestream_vfs.executors import Executors
from litestream_vfs import filemeta
from litestream_vfs.pagecache import PageCache
from litestream_vfs.process import PROCESS
from litestream_vfs.replica import Replica
from litestream_vfs.restore import restore
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.storage.file import FileStorage
from litestream_vfs.validate import validate
from support.compaction import hide_compacted_from, l0_run_covered_by_l1
from support.many_files import ManyFiles, build_many_large_l0, build_seeded
from support.replicas import run_restore
from support.threads import run_threads
from support.truth import ground_truth, table_contents


def files_held(replica: Replica) -> dict[LtxObject, str]:
    """Every LtxObject that `replica` (and the process's shared parts) can reach through data,
    with the path that holds it: code, modules, threads and other replicas are not followed,
    so what is found is what this replica's owners keep."""
    found: dict[LtxObject, str] = {}
    path = {id(replica): "replica", id(PROCESS): "PROCESS"}
    todo: list[object] = [replica, PROCESS]
    opaque = (types.ModuleType, type, types.FunctionType, types.FrameType, threading.Thread, types.CodeType)
    while todo:
        holder = todo.pop()
        fields = holder if isinstance(holder, dict) else getattr(holder, "__dict__", {})
        names = {id(v): k for k, v in fields.items() if isinstance(k, str)}
        for obj in gc.get_referents(holder):
            if id(obj) in path or isinstance(obj, opaque) or (isinstance(obj, Replica) and obj is not replica):
                continue
            where = path[id(holder)] + (f".{names[id(obj)]}" if id(obj) in names else
                                        "" if obj is fields else f">{type(obj).__name__}")
            if isinstance(obj, LtxObject):
                found.setdefault(obj, where)
            else:
                path[id(obj)] = where
                todo.append(obj)
    return found


def test_nothing_keeps_files_that_left_the_listing(replica_copy, file_replica):
    """Issue 14, item 4: memory follows the listing. Read a state planned from L0 files (every
    file verified, indexed, its pages cached), let compaction's L1 file replace them, read again
    (re-planned), close: no owner in the process may still hold a file that left the listing."""
    lo, hi = l0_run_covered_by_l1(replica_copy)
    moved = hide_compacted_from(replica_copy, lo)
    pinned = connect(str(replica_copy), txid=f"{hi:016x}")
    replica = PROCESS.replica(str(replica_copy), None)[0]
    table_contents(pinned)
    for aside, path in moved.items():
        aside.rename(path)
    for obj in replica.state(hi).plan:
        if obj.level == 0 and obj.min_txid >= lo:
            os.unlink(replica_copy / "ltx" / "0" / obj.name)
    replica.refresh()
    PROCESS.cache.clear()
    pinned.execute("PRAGMA shrink_memory")
    assert table_contents(pinned) == ground_truth(file_replica.restore(hi))
    pinned.close()
    gc.collect()
    gone = {obj: holder for obj, holder in files_held(replica).items() if obj not in replica.files}
    assert not gone, f"files no longer listed are still held: {gone}"


def test_travel_by_time_survives_compaction_between_search_and_plan(replica_copy, file_replica, monkeypatch):
    """Found by the soak: the time search picks a state inside a run of L0 files; before it is
    planned, compaction replaces the run by its L1 file and a poll publishes that listing. The
    answer must be a state that existed at or before the time (from the listing searched, or
    from the new one), never "not a restorable state"."""
    lo, hi = l0_run_covered_by_l1(replica_copy)
    moved = hide_compacted_from(replica_copy, lo)
    replica = PROCESS.replica(str(replica_copy), None)[0]
    when = replica.state(lo).timestamp
    plan = replica._planned

    def compaction_then_plan(chains, txid, charge=()):
        if moved:  # the search is done: compaction and retention happen now, a poll lists
            for aside, path in moved.items():
                aside.rename(path)
            moved.clear()
            for gone in range(lo, hi + 1):
                os.unlink(replica_copy / "ltx" / "0" / LtxObject(0, gone, gone, 0).name)
            replica.refresh()
        return plan(chains, txid, charge)

    monkeypatch.setattr(replica, "_planned", compaction_then_plan)
    state = replica.state_at(when)
    assert state.txid in (lo, lo - 1) and state.timestamp <= when
    monkeypatch.undo()
    travelled = connect(str(replica_copy), txid=f"{state.txid:016x}")
    assert table_contents(travelled) == ground_truth(file_replica.restore(state.txid))
    travelled.close()


def test_metas_of_files_gone_from_the_listing_still_answer(replica_copy):
    """`metas()` returns what it loaded even when a listing pruned those files meanwhile."""
    lo, hi = l0_run_covered_by_l1(replica_copy)
    hide_compacted_from(replica_copy, lo)
    replica = PROCESS.replica(str(replica_copy), None)[0]
    plan = replica.chains_for().plan(hi)
    os.unlink(replica_copy / "ltx" / "0" / plan[0].name if plan[0].level == 0 else
              replica_copy / "ltx" / "0" / plan[-1].name)
    metas = replica.metas(plan[:-1])  # loads (the deleted one may already be gone: fine if cached)
    replica.refresh()  # prunes the deleted file from the store
    again = replica.metas(plan[:-1][-1:])
    assert [m.obj for m in metas] == list(plan[:-1]) and again[0].obj == plan[-2]


# -- many large files in one plan, small pools (issue 14, items 2 and 9) -----------------
LARGE_FILES = 40


@pytest.fixture(scope="module")
def many_files(tmp_path_factory) -> ManyFiles:
    return build_many_large_l0(tmp_path_factory.mktemp("many"), LARGE_FILES)


def test_a_plan_of_many_large_files_loads_with_small_pools(many_files, tmp_path, monkeypatch):
    """Loading ≥ 40 large indexes at once used to deadlock a pool smaller than the file count:
    each index load waited, on a pool thread, for its header read queued on the same pool."""
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", 256 * 1024)  # ~300 KB files: read by ranges
    executors = Executors(io=2, tasks=2, prefetch=1)
    replica = Replica(FileStorage(many_files.url), PageCache(8 << 20), executors)
    try:
        plan = replica.chains_for().plan(many_files.txids[-1])
        large = [o for o in plan if o.size > filemeta.WHOLE_FILE_LIMIT]
        assert len(large) >= LARGE_FILES, [o.size for o in plan]
        state, = run_threads([lambda: replica.latest()], timeout=60)
        assert state.txid == many_files.txids[-1] and len(state.metas) == len(plan)
        out = tmp_path / "ours.db"
        run_threads([lambda: restore(replica, state, str(out))], timeout=120)
        truth = tmp_path / "truth.db"
        run_restore(many_files.binary, many_files.litestream_url, truth, {}, state.txid)
        assert ground_truth(out) == ground_truth(truth)
        report, = run_threads([lambda: validate(replica)], timeout=120)
        assert report.ok and report.files_checked == len(plan)
    finally:
        assert executors.shutdown(10) == []


# -- a replica deleted and re-created at the same URL (issue 14, item 3) -----------------
READ_WIDE = r"""
import json, sys
from litestream_vfs.connect import connect, open_replica
db = connect(sys.argv[1], params={"cache_dir": sys.argv[2]})
print(json.dumps([r[0] for r in db.execute("SELECT hex(payload) FROM wide ORDER BY id")]))
"""


def wide_rows(connection: apsw.Connection) -> list[str]:
    return [r[0] for r in connection.execute("SELECT hex(payload) FROM wide ORDER BY id")]


def in_another_process(url: str, cache_dir: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", READ_WIDE, url, str(cache_dir)], capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.parametrize("backend", ["file", "webdav"])
def test_a_replica_recreated_at_the_same_url_is_never_read_from_the_old_ones_caches(tmp_path, request, backend):
    cache_dir = tmp_path / "cache"
    if backend == "webdav":  # the server's listing must tell the two versions of a file apart
        server = request.getfixturevalue("webdav_server")
        root = server.root / "recreated" / tmp_path.name
        url = server.url(f"recreated/{tmp_path.name}")
    else:
        root = tmp_path / "replica"
        url = str(root)
    build_seeded(tmp_path / "old", root, seed=1)
    old_files = {(o.level, o.name, o.size) for o in FileStorage(str(root)).list_files()}
    first = connect(url, params={"cache_dir": str(cache_dir)})
    plain = connect(url)
    old = wide_rows(first)
    assert old and wide_rows(plain) == old and in_another_process(url, cache_dir) == old
    first.close()
    plain.close()  # both replicas stay warm in this process: listing, indexes, pages

    shutil.rmtree(root)
    build_seeded(tmp_path / "new", root, seed=2)
    new_files = {(o.level, o.name, o.size) for o in FileStorage(str(root)).list_files()}
    same = old_files & new_files
    assert len(same) >= 3, "the trap is not armed: no file of the new replica has an old one's name and size"
    truth = sorted(r[0] for r in apsw.Connection(str(tmp_path / "new" / "source.db"), flags=apsw.SQLITE_OPEN_READONLY)
                   .execute("SELECT hex(payload) FROM wide ORDER BY id"))

    for params in ({"cache_dir": str(cache_dir)}, {}):  # this process, with and without the disk cache
        again = connect(url, params=params)
        assert sorted(wide_rows(again)) == truth and wide_rows(again) != old, params
        assert again.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        again.close()
    assert sorted(in_another_process(url, cache_dir)) == truth  # another process sharing cache_dir


def test_a_time_whose_dating_file_vanished_after_the_listing_is_found_by_listing_again(replica_copy, file_replica):
    """Found by the live soak: travelling by time read the header of an L0 file retention had
    just deleted and failed with 'not found'; the state is still there (its L1 file)."""
    lo, hi = l0_run_covered_by_l1(replica_copy)
    when = open_replica(file_replica.url).state(hi).timestamp
    replica = PROCESS.replica(str(replica_copy), None)[0]
    assert replica.chains_for().finest(hi).level == 0  # the search would date state hi by its L0 file
    os.unlink(replica_copy / "ltx" / "0" / f"{hi:016x}-{hi:016x}.ltx")
    state = replica.state_at(when)
    assert state.txid == hi and state.level == 1
