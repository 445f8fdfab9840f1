"""Travelling by time while retention deletes level-0 files: the search for the state at
a time reads the headers of files that may have vanished since the last listing; it
must list again and answer from the files that remain, never fail on a deleted file
(found by the 30-minute soak: '... not found (removed by compaction?)'). Here the state
itself is gone too, so the time lands on the last L1 end before it."""

from __future__ import annotations

import shutil

from litestream_vfs.connect import connect, open_replica
from litestream_vfs.timeparse import format_time
from support.truth import ground_truth, table_contents


def test_time_travel_after_retention_deleted_level_0(file_replica, tmp_path):
    root = tmp_path / "replica"
    shutil.copytree(file_replica.url, root, ignore=shutil.ignore_patterns("*.tmp"))
    history = open_replica(file_replica.url).history()  # the original: nothing of the copy is read yet
    compacted_ends = {int(p.name[17:33], 16) for p in (root / "ltx").glob("[1-9]/*.ltx")}
    # A state dated by its own L0 file, older than the newest L1 end: retention may delete its file.
    target = next(h for h in reversed(history) if h.level == 0 and h.txid < max(compacted_ends)
                  and h.txid not in compacted_ends)
    connection = connect(str(root))
    assert connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    for path in (root / "ltx" / "0").glob("*.ltx"):  # retention: every L0 file an L1 file covers
        if int(path.name[17:33], 16) <= max(compacted_ends):
            path.unlink()
    connection.execute(f"PRAGMA litestream_time = '{format_time(target.timestamp)}'")
    with connection:
        (txid,), = connection.execute("PRAGMA litestream_txid").fetchall()
        got = table_contents(connection)
    landed = int(txid, 16)
    assert landed == max(t for t in compacted_ends if t <= target.txid)  # the last state left at or before it
    assert got == ground_truth(file_replica.restore(landed))
    connection.close()
