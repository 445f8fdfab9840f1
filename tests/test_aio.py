"""Queries from an event loop run on owned worker threads: the loop keeps running, cancellation interrupts."""

from __future__ import annotations

import asyncio
import threading
import time

import apsw
import pytest

from litestream_vfs import aio, dbapi
from support.replicas import ReplicaFixture

#: A query that keeps SQLite busy (no replica pages needed) for as long as it is allowed to.
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
BUSY = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) SELECT count(*) FROM n"


def aio_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("litestream-aio")]


def test_query_read_sql_and_arrow_at_latest_and_in_the_past(file_replica: ReplicaFixture) -> None:
    before = dict(file_replica.step_txids)["insert artists"] - 1
    sql = "SELECT ArtistId, Name FROM Artist ORDER BY ArtistId"

    async def main() -> tuple:
        return await asyncio.gather(aio.query(file_replica.url, sql),
                                    aio.query(file_replica.url, sql, txid=f"{before:016x}"),
                                    aio.read_sql(file_replica.url, sql, txid=f"{before:016x}"),
                                    aio.arrow(file_replica.url, "SELECT * FROM Artist WHERE ?", (0,)))

    latest, past, frame, empty = asyncio.run(main())
    assert latest == file_replica.truth(None, sql) and past == file_replica.truth(before, sql) != latest
    assert list(frame.itertuples(index=False, name=None)) == past
    assert empty.num_rows == 0 and empty.column_names == ["ArtistId", "Name"]


def test_the_loop_keeps_running_while_a_query_works(file_replica: ReplicaFixture) -> None:
    async def main() -> tuple[int, list]:
        ticks = 0
        query = asyncio.ensure_future(aio.query(file_replica.url, BUSY))
        while not query.done():
            ticks += 1
            await asyncio.sleep(0.005)
        return ticks, await query

    ticks, rows = asyncio.run(main())
    assert rows == [(2000000,)] and ticks >= 5
    assert aio_threads() and len(aio_threads()) <= aio.WORKERS


def test_cancelling_interrupts_the_query_and_frees_the_connection(file_replica: ReplicaFixture) -> None:
    db = dbapi.connect(file_replica.url)

    async def main() -> float:
        task = asyncio.ensure_future(aio.query(db, ENDLESS))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(main()) < 2.0
    assert db.execute("SELECT count(*) FROM Genre").fetchone()[0] > 0  # not left mid-statement
    db.close()
    with pytest.raises(ValueError, match="PRAGMA"):
        asyncio.run(aio.query(db, "SELECT 1", time="1 hour ago"))


def test_shutdown_joins_the_workers_and_later_calls_start_new_ones(file_replica: ReplicaFixture) -> None:
    asyncio.run(aio.query(file_replica.url, "SELECT 1"))
    assert aio_threads()
    aio.shutdown()
    assert aio_threads() == []
    assert asyncio.run(aio.query(file_replica.url, "SELECT 2")) == [(2,)]
    aio.shutdown()


def test_shutdown_interrupts_a_running_query(file_replica: ReplicaFixture) -> None:
    async def main() -> float:
        task = asyncio.ensure_future(aio.query(file_replica.url, ENDLESS))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        aio.shutdown()
        stopped = time.monotonic() - started
        with pytest.raises(apsw.InterruptError):
            await task
        return stopped

    assert asyncio.run(main()) < 2.0
    assert aio_threads() == []


def test_package_close_stops_event_loop_queries(file_replica: ReplicaFixture) -> None:
    import litestream_vfs

    async def main() -> None:
        task = asyncio.ensure_future(aio.query(file_replica.url, ENDLESS))
        await asyncio.sleep(0.2)
        litestream_vfs.close()
        with pytest.raises(apsw.InterruptError):
            await task

    asyncio.run(main())
    assert aio_threads() == []
    assert asyncio.run(aio.query(file_replica.url, "SELECT count(*) FROM Genre"))[0][0] > 0  # starts afresh
