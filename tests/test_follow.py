"""A connection at `latest` follows a live replica: new transactions appear without
reopening, every read is a state that really existed, in order, also while
Litestream compacts level 0 away under it."""

from __future__ import annotations

import threading
import time

import apsw
import pytest

import litestream_vfs
from litestream_vfs.connect import connect
from support.live import live_replication
from support.threads import wait_for
from support.replicas import run_restore
from support.workload import open_writer

POLL = 0.2


def test_following_latest_sees_every_commit_in_order(tmp_path, fast_polling):
    settings = {"l0-retention": "1s", "l0-retention-check-interval": "1s"}
    with live_replication(tmp_path, settings=settings) as live:
        writer = open_writer(live.db_path)
        writer.execute("CREATE TABLE ticks(n INTEGER PRIMARY KEY)")
        wait_for(lambda: (live.replica_dir / "ltx" / "0").is_dir())
        time.sleep(0.5)
        reader = connect(str(live.replica_dir))
        committed = [0]

        def write() -> None:
            for n in range(1, 41):
                writer.execute("INSERT INTO ticks VALUES (?)", (n,))
                committed[0] = n
                time.sleep(0.12)

        thread = threading.Thread(target=write)
        thread.start()
        seen: list[tuple[int, int]] = []  # (txid, ticks)
        while thread.is_alive() or (seen and seen[-1][1] < 40):
            reader.execute("BEGIN")  # one read transaction: the PRAGMA names the pinned state
            (count, top), = reader.execute("SELECT count(*), coalesce(max(n), 0) FROM ticks").fetchall()
            (txid,), = reader.execute("PRAGMA litestream_txid").fetchall()
            reader.execute("COMMIT")
            assert count == top, "a read mixed two states"
            seen.append((int(txid, 16), top))
            assert len(seen) < 2000, "never caught up"
            time.sleep(0.03)
        thread.join()
        assert [t for t, _ in seen] == sorted(t for t, _ in seen), "states went backwards"
        assert len(dict(seen)) == len(set(seen)), f"one TXID read as two states: {sorted(set(seen))}"
        assert [n for _, n in seen] == sorted(n for _, n in seen)
        assert len({n for _, n in seen}) > 5, "the reader saw too few intermediate states"
    # Ground truth for the states that retention has not made unrestorable (the last one always).
    still_there = set(litestream_vfs.file_of(reader).replica.refresh().states)
    samples = sorted({(t, n) for t, n in seen if t in still_there})
    assert samples and samples[-1][1] == 40
    for txid, ticks in samples:
        out = tmp_path / f"truth-{txid}.db"
        run_restore(live.binary, live.litestream_url, out, {}, txid)
        truth = apsw.Connection(str(out), flags=apsw.SQLITE_OPEN_READONLY)
        assert truth.execute("SELECT count(*) FROM ticks").fetchall() == [(ticks,)]


def test_polling_is_one_list_per_interval_per_replica(tmp_path, fast_polling):
    with live_replication(tmp_path) as live:
        wait_for(lambda: (live.replica_dir / "ltx" / "0").is_dir())
        time.sleep(0.5)
        readers = [connect(str(live.replica_dir)) for _ in range(5)]
        for reader in readers:
            reader.execute("SELECT count(*) FROM Artist").fetchall()
        replica = litestream_vfs.file_of(readers[0]).replica
        before = replica.counters.snapshot()["lists"]
        time.sleep(10 * POLL + POLL / 2)
        polls = replica.counters.snapshot()["lists"] - before
    # the file backend counts one LIST per level directory read; polling reads only level 0
    assert 8 <= polls <= 11, f"{polls} listings in 10 intervals for 5 connections"
