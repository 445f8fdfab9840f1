"""Files vanish under a reader (compaction + L0 retention): every read is ground truth,
re-planned from the files that remain, or a clear error naming the state.

Ground truth for a state read mid-race comes from a shadow directory: a thread
hard-links every LTX file the moment it appears, so the real `litestream
restore` can rebuild any state ever read, even after Litestream deleted its
level-0 files.
"""

from __future__ import annotations

import collections
import threading

import apsw

from litestream_vfs.connect import connect
from litestream_vfs.errors import LitestreamVFSError
from litestream_vfs.storage.base import parse_ltx_name
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
