"""ReadPath: a state's pages read from real Litestream files vanishing as compaction and
retention make them vanish, re-planned from the files that remain, or one clear error."""

from __future__ import annotations

import gc
import os

import apsw
import pytest

from litestream_vfs.connect import connect, open_replica
from litestream_vfs.errors import LitestreamVFSError
from litestream_vfs.process import PROCESS
from litestream_vfs.storage.base import LEVELS
from litestream_vfs.vfs import file_of
from support.compaction import hide_compacted_from, l0_run_covered_by_l1
from support.truth import ground_truth, table_contents


@pytest.mark.parametrize("listed", [False, True], ids=["not-listed", "listed"])
def test_pinned_state_reads_after_its_planned_file_vanished(replica_copy, file_replica, listed):
    """Issue 14, item 1: pin a state planned from L0 files; compaction's L1 file appears and
    retention deletes an L0 input; a new listing may run (another connection, the poller); the
    page cache evicts. The next query must re-plan from L1, never raise a raw KeyError."""
    lo, hi = l0_run_covered_by_l1(replica_copy)
    moved = hide_compacted_from(replica_copy, lo)
    pinned = connect(str(replica_copy), txid=f"{hi:016x}")
    replica = PROCESS.replica(str(replica_copy), None)[0]
    state = replica.state(hi)
    assert [o.level for o in state.plan if o.min_txid >= lo] == [0] * (hi - lo + 1)
    # A file of the run, if possible one without page 1 (the first query reads page 1 only);
    # which one holds page 1 depends on how Litestream's compaction fell in this run.
    victim = min((m for m in replica.metas(state.plan) if m.obj.min_txid >= lo and m.tail.index),
                 key=lambda m: 1 in m.tail.index).obj
    assert pinned.execute("PRAGMA page_count").fetchall() == [(state.commit,)]
    for aside, path in moved.items():  # compaction's output appears...
        aside.rename(path)
    os.unlink(replica_copy / "ltx" / "0" / victim.name)  # ...retention deletes an input...
    if listed:
        replica.refresh()  # ...a listing runs...
    PROCESS.cache.clear()  # ...and the pages are evicted
    truth = ground_truth(file_replica.restore(hi))
    assert table_contents(pinned) == truth
    assert pinned.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert pinned.execute("PRAGMA litestream_txid").fetchall() == [(f"{hi:016x}",)]
    pinned.close()


@pytest.mark.parametrize("listed", [False, True], ids=["not-listed", "listed"])
def test_state_gone_entirely_is_one_clear_error_through_sqlite(replica_copy, listed):
    """No cover for the vanished file: an apsw error naming the state, never a raw exception."""
    replica = open_replica(str(replica_copy))
    chains = replica.chains_for()
    ends = {o.max_txid for o in replica.files if o.level >= 1}
    txid = next(t for t in reversed(chains.states) if t not in ends and chains.plan(t)[-1].level == 0)
    connection = connect(str(replica_copy), txid=f"{txid:016x}")
    assert connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    os.unlink(replica_copy / "ltx" / "0" / chains.plan(txid)[-1].name)  # the only file ending there
    if listed:
        replica.refresh()
    PROCESS.cache.clear()
    connection.execute("PRAGMA shrink_memory")  # SQLite's own page cache must not answer either
    with pytest.raises(apsw.Error, match=f"TXID {txid:016x} is not a restorable state") as caught:
        connection.execute("PRAGMA integrity_check").fetchall()  # every page, indexes included
    assert isinstance(caught.value, LitestreamVFSError)  # also catchable as our own error
    connection.close()


def test_a_replan_lists_the_replica_once(replica_copy):
    lo, hi = l0_run_covered_by_l1(replica_copy)
    moved = hide_compacted_from(replica_copy, lo)
    connection = connect(str(replica_copy), txid=f"{hi:016x}")
    plan = PROCESS.replica(str(replica_copy), None)[0].state(hi).plan
    assert connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    for aside, path in moved.items():
        aside.rename(path)
    os.unlink(replica_copy / "ltx" / "0" / plan[-1].name)
    PROCESS.cache.clear()
    file = file_of(connection)
    file.counters.reset()
    table_contents(connection)
    assert file.counters.lists <= len(LEVELS)  # one full listing (one request per level here)
    connection.close()


def test_a_replan_is_followed_while_the_old_state_is_held_then_forgotten(replica_copy):
    """The old state keeps reading through its re-plan (no second listing, the same bytes as
    the state planned afresh); once nothing holds the old state, its re-plan is dropped too."""
    lo, hi = l0_run_covered_by_l1(replica_copy)
    moved = hide_compacted_from(replica_copy, lo)
    replica = open_replica(str(replica_copy))
    old = replica.state(hi)
    every = range(1, old.commit + 1)
    for aside, path in moved.items():
        aside.rename(path)
    deleted = [o for o in old.plan if o.level == 0 and o.min_txid >= lo]
    for obj in deleted:
        os.unlink(replica_copy / "ltx" / "0" / obj.name)
    PROCESS.cache.clear()
    first = replica.read_pages(old, every)
    replica.counters.reset()
    assert replica.read_pages(old, every) == first and replica.counters.lists == 0
    fresh = replica.state(hi)
    assert deleted and not set(deleted) & set(fresh.plan)  # planned from compacted files
    assert replica.read_pages(fresh, every) == first
    assert len(replica.read_path._replans) == 1
    del old
    gc.collect()
    assert len(replica.read_path._replans) == 0
