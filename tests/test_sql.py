"""The SQL surface of a connection following a live replica: loud staleness.

Real `litestream replicate` writes the replica while a writer commits; the
follower's `max_lag` and `litestream_stats` are checked against it (the PRAGMA
getters that move at `latest`: test_read_position.py).
"""

from __future__ import annotations

import time

import apsw
import pytest

import litestream_vfs
from litestream_vfs.connect import connect
from support.live import live_replication
from support.threads import wait_for
from support.workload import open_writer


def stats(connection: apsw.Connection) -> dict[str, object]:
    return {name: value for scope, name, value in connection.execute("SELECT * FROM litestream_stats")
            if scope == "connection"}


def test_max_lag_fails_a_stale_follower_loudly_and_stats_show_why(tmp_path, fast_polling):
    """Issue 14, item 5: a follower whose replica stops moving, then whose polls fail, is refused
    with the age and the last poll error, and `litestream_stats` shows the failing polls."""
    with live_replication(tmp_path) as live:
        writer = open_writer(live.db_path)
        writer.execute("CREATE TABLE ticks(n INTEGER PRIMARY KEY)")
        wait_for(lambda: (live.replica_dir / "ltx" / "0").is_dir(), what="the first L0 file")
        time.sleep(0.5)
        strict = connect(str(live.replica_dir), params={"max_lag": "1.5"})
        relaxed = connect(str(live.replica_dir))  # the same replica, no max_lag: never refused
        for n in range(1, 6):  # fresh: every read works
            writer.execute("INSERT INTO ticks VALUES (?)", (n,))
            time.sleep(0.3)
            strict.execute("SELECT count(*) FROM ticks").fetchall()
        assert stats(strict)["max_lag"] == 1.5 and stats(strict)["poll_errors"] == 0
        writer.close()
    # Litestream has stopped: the newest state ages past max_lag
    time.sleep(2.0)
    with pytest.raises(apsw.Error, match=r"replica stale: newest state \d+ s old .*last poll error: none"):
        strict.execute("SELECT count(*) FROM ticks").fetchall()
    assert relaxed.execute("SELECT count(*) FROM ticks").fetchall() == [(5,)]
    # the replica goes away: polls fail, and say so
    live.replica_dir.rename(tmp_path / "moved-away")
    wait_for(lambda: stats(relaxed)["poll_errors"] > 0, what="a failed poll")  # polls are per replica
    with pytest.raises(apsw.Error, match=r"replica stale: .*last poll error: .*no replica at"):
        strict.execute("SELECT count(*) FROM ticks").fetchall()
    shown = stats(relaxed)
    assert "no replica at" in shown["last_poll_error"] and shown["seconds_since_poll_ok"] > 0
    assert isinstance(pytest.raises(litestream_vfs.StaleReplica, strict.execute, "SELECT 1 FROM ticks").value,
                      apsw.Error)
    strict.close()
    relaxed.close()


def test_max_lag_is_checked_as_a_uri_parameter(file_replica):
    with pytest.raises(apsw.Error, match="max_lag='soon' is not a number of seconds"):
        connect(file_replica.url, params={"max_lag": "soon"})


def test_register_max_lag_is_the_default_a_connection_overrides(file_replica):
    litestream_vfs.register(max_lag=0.001)  # the stable fixture's newest state is older than that
    try:
        stale = connect(file_replica.url)
        with pytest.raises(apsw.Error, match="replica stale"):
            stale.execute("SELECT count(*) FROM Artist").fetchall()
        off = connect(file_replica.url, params={"max_lag": "off"})
        assert off.execute("SELECT count(*) FROM Artist").fetchall()
        pinned = connect(file_replica.url, txid=f"{file_replica.step_txids[-1][1]:016x}")
        assert pinned.execute("SELECT count(*) FROM Artist").fetchall()  # max_lag is about latest only
        for connection in (stale, off, pinned):
            connection.close()
    finally:
        litestream_vfs.register(max_lag=0)
