"""Queries from an event loop (FastAPI, Jupyter) without blocking it.

    rows = await litestream_vfs.aio.query("s3://bucket/chinook.db", "SELECT ...")
    table = await litestream_vfs.aio.arrow(url, sql, time="1 hour ago")

Each call runs on one of a few worker threads owned by this module (named
`litestream-aio_N`), so the loop keeps serving while pages are fetched. When
the awaiting task is cancelled, the query is interrupted. `shutdown()`
(called by `litestream_vfs.close()` and at exit) interrupts running queries
and joins the threads; a later call starts new ones.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

import apsw

if TYPE_CHECKING:
    import pandas
    import pyarrow

T = TypeVar("T")
#: Queries at once; more wait their turn (each holds a connection and a thread).
WORKERS = 4

_executor: ThreadPoolExecutor | None = None
#: Connections a worker is running a query on now (one entry per query).
_running: list[apsw.Connection] = []
_lock = threading.Lock()
Params = Sequence[Any] | Mapping[str, Any] | None


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="litestream-aio")
        return _executor


def shutdown() -> None:
    """Drop queued queries, interrupt running ones and join the worker threads."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
        running = list(_running)
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
        for connection in running:
            connection.interrupt()
        executor.shutdown(wait=True)


atexit.register(shutdown)


async def run(work: Callable[[apsw.Connection], T], source: Any, *, time: str | None = None,
              txid: str | None = None) -> T:
    """`work(connection)` on a worker thread, on `source` (a replica URL, opened and closed here, or a connection).

    Cancelling the awaiting task interrupts the query running on the connection.
    """
    from .connect import connect

    if isinstance(source, str):
        opened = _pool().submit(connect, source, time=time, txid=txid)
        connection = await asyncio.wrap_future(opened)
        try:
            return await _on_worker(work, connection)
        finally:
            connection.close()
    if time or txid:
        raise ValueError("time/txid apply to a replica URL; for a connection use PRAGMA litestream_time")
    return await _on_worker(work, getattr(source, "apsw", source))


def _tracked(work: Callable[[apsw.Connection], T], connection: apsw.Connection) -> T:
    with _lock:
        _running.append(connection)
    try:
        return work(connection)
    finally:
        with _lock:
            _running.remove(connection)


async def _on_worker(work: Callable[[apsw.Connection], T], connection: apsw.Connection) -> T:
    future = _pool().submit(_tracked, work, connection)
    try:
        return await asyncio.shield(asyncio.wrap_future(future))
    except asyncio.CancelledError:
        connection.interrupt()
        await asyncio.wait([asyncio.wrap_future(future)])  # the connection is free again before we return
        raise


async def query(source: Any, sql: str, params: Params = None, *, time: str | None = None,
                txid: str | None = None) -> list[tuple]:
    """Every row of `sql`, as tuples."""
    return await run(lambda db: db.execute(sql, params or ()).fetchall(), source, time=time, txid=txid)


async def read_sql(source: Any, sql: str, params: Params = None, *, time: str | None = None,
                   txid: str | None = None) -> "pandas.DataFrame":
    """`litestream_vfs.read_sql` off the loop."""
    from .notebook import read_sql as read

    return await run(functools.partial(read, sql=sql, params=params), source, time=time, txid=txid)


async def arrow(source: Any, sql: str, params: Params = None, *, time: str | None = None,
                txid: str | None = None) -> "pyarrow.Table":
    """`litestream_vfs.arrow` off the loop."""
    from .arrowio import arrow as to_table

    return await run(functools.partial(to_table, sql=sql, params=params), source, time=time, txid=txid)
