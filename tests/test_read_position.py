"""Which state a connection reads (read_position.ReadPosition), on replicas written by real
Litestream: following `latest` or pinned at a TXID, one state per read transaction, the next
state at `latest` as soon as the listing shows it, and re-planning around damaged files."""

from __future__ import annotations

import time

import pytest

from litestream_vfs.connect import connect, open_replica
from litestream_vfs.errors import LTXError, OutOfHistory
from litestream_vfs.process import PROCESS
from litestream_vfs.read_position import ReadPosition
from litestream_vfs.staleness import Freshness
from litestream_vfs.timeparse import format_time
from litestream_vfs.vfs import file_of
from support.compaction import delete_l0_run, hide_compacted_from, state_only_l0_restores
from support.live import live_replication
from support.threads import wait_for
from support.truth import ground_truth, table_contents
from support.workload import open_writer


def position_on(url: str, target: int | None) -> ReadPosition:
    """A position on the process's replica for `url` (close it to stop following)."""
    replica, poller = PROCESS.replica(url, None)
    return ReadPosition(replica, poller, Freshness(replica, poller, None), target, ())


def test_travel_and_following_move_the_state_and_the_poller(file_replica):
    older = dict(file_replica.step_txids)["insert artists"]
    position = position_on(file_replica.url, None)
    poller, replica = position.poller, position.replica
    followers = poller._followers
    assert position.following and position.state.txid == replica.latest().txid
    assert position.travel_to_txid(older).txid == older == position.state.txid
    assert not position.following and poller._followers == followers - 1
    assert position.travel_to_time(replica.state(older).timestamp).txid == older  # at or before
    assert position.follow_latest().txid == replica.latest().txid and position.following
    assert poller._followers == followers
    with pytest.raises(OutOfHistory):
        position.travel_to_txid(replica.latest().txid + 1000)
    assert position.following  # a failed travel leaves the position where it was
    position.close()
    assert poller._followers == followers - 1
    with pytest.raises(OutOfHistory):  # an unknown TXID fails at open
        position_on(file_replica.url, replica.latest().txid + 1000)


def test_a_transaction_reads_one_state_whatever_moves_meanwhile(file_replica):
    steps = dict(file_replica.step_txids)
    position = position_on(file_replica.url, steps["insert artists"])
    position.begin()
    pinned = position.pinned
    assert pinned is not None and pinned.txid == steps["insert artists"]
    position.travel_to_txid(steps["final insert"])
    assert position.state is pinned  # inside the transaction nothing moves
    position.pinned = None
    assert position.state.txid == steps["final insert"] and position.pinned is None
    position.close()


def test_a_connection_moved_inside_a_transaction_reads_the_new_state_after_it(file_replica):
    steps = dict(file_replica.step_txids)
    connection = connect(file_replica.url, txid=f"{steps['insert artists']:016x}")
    first = ground_truth(file_replica.restore(steps["insert artists"]))
    connection.execute("BEGIN")
    assert table_contents(connection) == first
    connection.execute(f"PRAGMA litestream_txid='{steps['delete artists']:016x}'")
    assert table_contents(connection) == first
    connection.execute("COMMIT")
    assert table_contents(connection) == ground_truth(file_replica.restore(steps["delete artists"]))
    connection.close()


def test_at_latest_the_next_state_follows_the_listing_but_not_a_running_transaction(replica_copy):
    newest = max(int(p.name[17:33], 16) for p in replica_copy.glob("ltx/*/*.ltx"))
    hidden = [p for p in replica_copy.glob("ltx/*/*.ltx") if int(p.name[17:33], 16) == newest]
    for path in hidden:  # as if Litestream had not shipped the newest transaction yet
        path.rename(path.with_name(path.name + ".hidden"))
    position = position_on(str(replica_copy), None)
    assert position.state.txid < newest
    position.begin()
    before = position.pinned
    for path in hidden:
        path.with_name(path.name + ".hidden").rename(path)
    position.replica.refresh()  # what the poller does in the background
    assert position.state is before  # the running transaction keeps its state
    position.pinned = None
    assert position.state.txid == newest  # the next one sees the new state, no transaction needed
    position.begin()
    assert position.pinned.txid == newest
    position.pinned = None
    position.close()


def test_damaged_planned_files_are_planned_around_and_sqlite_drops_their_pages(replica_copy):
    """Every file ending at the pinned TXID is damaged in turn (compacted levels first): each
    time the state is re-planned from the others, until none is left and the error names it."""
    replica = open_replica(str(replica_copy))
    latest = replica.latest()
    position = position_on(str(replica_copy), latest.txid)
    position.begin()
    position.pinned = None
    ending = sorted((obj for obj in replica.files if obj.max_txid == latest.txid), key=lambda o: -o.level)
    assert len(ending) > 1 and ending[-1].level == 0
    for count, obj in enumerate(ending[:-1], start=1):
        assert obj in position.state.plan
        replica.mark_damaged(obj, LTXError(str(obj), "test: damaged"))
        position.begin()
        assert position.generation == count  # page 1's version changes: SQLite drops what it cached
        assert position.pinned.txid == latest.txid and obj not in position.pinned.plan
        position.pinned = None
    replanned = position.state
    position.begin()  # nothing new found: same plan, same generation
    assert position.pinned is replanned and position.generation == len(ending) - 1
    position.pinned = None
    replica.mark_damaged(ending[-1], LTXError(str(ending[-1]), "test: damaged"))
    with pytest.raises(OutOfHistory, match=f"{latest.txid:016x}"):
        position.begin()
    assert position.generation == len(ending)
    position.close()


def txid(connection) -> int:
    return int(connection.execute("PRAGMA litestream_txid").fetchall()[0][0], 16)


def test_pragma_getters_at_latest_move_without_a_read(tmp_path, fast_polling):
    """Issue 14, item 7: a program polling PRAGMA litestream_txid sees new data arrive,
    though it runs no query in between."""
    with live_replication(tmp_path) as live:
        writer = open_writer(live.db_path)
        writer.execute("CREATE TABLE ticks(n INTEGER PRIMARY KEY)")
        wait_for(lambda: (live.replica_dir / "ltx" / "0").is_dir(), what="the first L0 file")
        time.sleep(0.5)
        follower = connect(str(live.replica_dir))
        follower.execute("SELECT count(*) FROM sqlite_master").fetchall()  # one read, then only PRAGMAs
        first = txid(follower)
        time_before = follower.execute("PRAGMA litestream_time").fetchall()[0][0]
        writer.execute("INSERT INTO ticks VALUES (1)")
        wait_for(lambda: txid(follower) > first, what="PRAGMA litestream_txid to move")
        assert follower.execute("PRAGMA litestream_time").fetchall()[0][0] >= time_before
        # and the next read transaction sees exactly that state
        moved = txid(follower)
        with follower:
            assert follower.execute("SELECT count(*) FROM ticks").fetchall() == [(1,)]
            assert txid(follower) == moved
        follower.close()
        writer.close()


def test_a_time_whose_state_retention_removed_reads_the_state_at_that_time_now(replica_copy, file_replica):
    """Found by the 30-minute soak: a connection set to a time resolves it to a state that
    exists only through L0 files; before its first read, compaction covers them with an L1
    file and retention deletes them. The time still has a state (the last restorable one at
    or before it), and SQLite has seen nothing of the removed one (its page 1 was in the
    deleted files), so the transaction starts from the state at that time now, never failing
    with "TXID … is not a restorable state" (a TXID set explicitly still does, tested above)."""
    lo, hi, removed = state_only_l0_restores(replica_copy, first_read_removed=True)
    moved = hide_compacted_from(replica_copy, lo)
    connection = connect(str(replica_copy))
    replica = file_of(connection).replica
    when = replica.state(removed).timestamp
    connection.execute(f"PRAGMA litestream_time = '{format_time(when)}'")
    assert txid(connection) == removed
    replica.cache.clear()  # a small page cache evicted what planning fetched
    for aside, path in moved.items():  # compaction, then retention; no poll has listed yet
        aside.rename(path)
    delete_l0_run(replica_copy, lo, hi)
    contents = table_contents(connection)
    now = txid(connection)
    restorable = replica.chains_for().states
    assert removed not in restorable and now == max(t for t in restorable if t <= removed)
    assert replica.state(now).timestamp <= when
    assert contents == ground_truth(file_replica.restore(now))
    connection.close()


def test_a_connection_opened_at_a_time_moves_when_a_listing_shows_its_state_removed(replica_copy, file_replica):
    """A notebook left at a time: once a listing shows compaction and retention removed the
    state found for it, the getters and the next transaction give the state at that time now.
    A transaction that already answered from the removed state fails clearly, never mixes."""
    lo, hi, removed = state_only_l0_restores(replica_copy)
    moved = hide_compacted_from(replica_copy, lo)
    replica = open_replica(str(replica_copy))
    when = format_time(replica.state(removed).timestamp)
    connection = connect(str(replica_copy), time=when)
    assert table_contents(connection) == ground_truth(file_replica.restore(removed))
    replica.cache.clear()
    for aside, path in moved.items():
        aside.rename(path)
    delete_l0_run(replica_copy, lo, hi)
    connection.execute("PRAGMA shrink_memory")  # SQLite's own cache must not answer
    # SQLite checks the change counter first, answered from page 1 kept for this state: the
    # transaction is committed to the removed state before a page of it fails
    with pytest.raises(OutOfHistory, match=f"TXID {removed:016x} is not a restorable state"):
        table_contents(connection)
    now = txid(connection)  # that read listed again: the getter already shows the move
    assert now != removed and connection.execute("PRAGMA litestream_time").fetchall()[0][0] <= when
    assert table_contents(connection) == ground_truth(file_replica.restore(now))
    connection.close()
