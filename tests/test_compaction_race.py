"""Files vanish under a reader (compaction + L0 retention): every read is ground truth,
re-planned from the files that remain, or a clear error naming the state.

Ground truth for a state read mid-race comes from a shadow directory: a thread
hard-links every LTX file the moment it appears, so the real `litestream
restore` can rebuild any state ever read, even after Litestream deleted its
level-0 files.
"""

from __future__ import annotations

import collections
import os
import threading

import apsw
import pytest

from litestream_vfs.connect import connect, open_replica
from litestream_vfs.errors import LitestreamVFSError
from litestream_vfs.process import PROCESS
from litestream_vfs.storage.base import LEVELS, parse_ltx_name
from litestream_vfs.vfs import file_of
from support.compaction import hide, l0_run_covered_by_l1
from support.replicas import ReplicaFixture, ReplicaLocation, build_replica, run_restore
from support.shadow import Shadow
from support.truth import ground_truth, table_contents

RETENTION = {"l0-retention": "1s", "l0-retention-check-interval": "1s"}


def read_state(connection: apsw.Connection) -> tuple[int, dict[str, list]]:
    """(TXID, every table) read inside one read transaction, so both are the same state."""
    with connection:
        contents = table_contents(connection)
        txid = int(connection.execute("PRAGMA litestream_txid").fetchall()[0][0], 16)
    return txid, contents


def test_reads_race_compaction_and_retention(tmp_path):
    replica_dir = tmp_path / "build" / "replica"
    replica_dir.mkdir(parents=True)
    built: dict[str, ReplicaFixture] = {}
    builder = threading.Thread(target=lambda: built.setdefault(
        "fixture", build_replica("0.5.17", "file", tmp_path / "build", settings=RETENTION)))
    reads: list[tuple[int, dict[str, list]]] = []
    outcomes: collections.Counter[str] = collections.Counter()
    with Shadow(ReplicaLocation("file", str(replica_dir)), tmp_path / "shadow") as shadow:
        builder.start()
        while not any((replica_dir / "ltx").glob("0/*.ltx")) and builder.is_alive():
            shadow.sync()
        follower = None
        while builder.is_alive():
            try:
                follower = follower or connect(str(replica_dir))
                reads.append(read_state(follower))
                outcomes["latest read"] += 1
                oldest = min((parse_ltx_name(p.name)[1] for p in (replica_dir / "ltx").glob("0/*.ltx")),
                             default=None)
                if oldest is not None:
                    old = connect(str(replica_dir), txid=f"{oldest:016x}")
                    reads.append(read_state(old))
                    old.close()
                    outcomes["old L0 state read"] += 1
            except (apsw.Error, LitestreamVFSError) as exc:
                outcomes[f"clean errors ({type(exc).__name__})"] += 1
                assert "TXID" in str(exc) or ".ltx" in str(exc), f"error names no state or file: {exc}"
        builder.join()
        if follower is not None:
            follower.close()
    assert "fixture" in built, "the replica build failed"
    vanished = [p for p in shadow.seen if not (replica_dir / p).exists()]
    truths: dict[int, dict[str, list]] = {}
    wrong = []
    for txid, contents in reads:
        if txid not in truths:
            out = tmp_path / f"truth-{txid:016x}.db"
            run_restore(built["fixture"].binary, f"file://{tmp_path / 'shadow'}", out, {}, txid)
            truths[txid] = ground_truth(out)
        if contents != truths[txid]:
            wrong.append(txid)
    print(f"\ncompaction race: {len(reads)} reads of {len(truths)} states, {dict(outcomes)}, "
          f"{len(vanished)} files deleted by Litestream while reading")
    assert wrong == []
    assert vanished, "retention deleted nothing: the race was not exercised"
    assert outcomes["old L0 state read"] > 0
    assert outcomes["latest read"] > 0


# -- a planned file deleted by hand ------------------------------------------------------
def test_deleted_planned_l0_file_is_replanned_from_l1(replica_copy, file_replica):
    lo, hi = l0_run_covered_by_l1(replica_copy)
    # Hide every compacted file that ends at or after `lo`, so the plan for `hi` uses L0 files.
    moved = hide(replica_copy, lambda level, a, b: b < lo)
    connection = connect(str(replica_copy), txid=f"{hi:016x}")
    file = PROCESS.replica(str(replica_copy), None)[0]
    plan = file.state(hi).plan
    assert [o.level for o in plan if o.min_txid >= lo] == [0] * (hi - lo + 1)
    assert connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    for aside, path in moved.items():  # compaction's output appears...
        aside.rename(path)
    victim = plan[-1]
    os.unlink(replica_copy / "ltx" / "0" / victim.name)  # ...and retention deletes an input
    PROCESS.cache.clear()  # so the next read must fetch the deleted file's pages
    truth = ground_truth(file_replica.restore(hi))
    assert table_contents(connection) == truth
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    connection.close()


def test_deleted_file_without_cover_is_a_clear_error_naming_the_state(replica_copy):
    replica = open_replica(str(replica_copy))
    chains = replica.chains_for()
    ends = {o.max_txid for o in replica.files if o.level >= 1}
    txid = next(t for t in reversed(chains.states) if t not in ends and chains.plan(t)[-1].level == 0)
    connection = connect(str(replica_copy), txid=f"{txid:016x}")
    assert connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    os.unlink(replica_copy / "ltx" / "0" / chains.plan(txid)[-1].name)  # the only file ending there
    PROCESS.cache.clear()
    connection.execute("PRAGMA shrink_memory")  # SQLite's own page cache must not answer either
    with pytest.raises((apsw.Error, LitestreamVFSError), match=f"TXID {txid:016x} is not a restorable state"):
        connection.execute("PRAGMA integrity_check").fetchall()  # every page, indexes included
    connection.close()


def test_a_replan_lists_the_replica_once(replica_copy):
    lo, hi = l0_run_covered_by_l1(replica_copy)
    moved = hide(replica_copy, lambda level, a, b: b < lo)
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
