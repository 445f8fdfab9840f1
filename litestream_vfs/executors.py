"""The process's worker threads, in tiers so that no task ever waits on its own pool.

- `io`: one request each (a GET of a range or a whole file). Its tasks never
  submit or wait on anything, so they always finish.
- `tasks`: per-file work made of several requests (load an index: header and
  tail at once; verify a whole file). Its tasks submit only to `io`. A task
  that needs more per-file work runs it inline (`run_all` knows), so a full
  `tasks` pool can never wait on work queued behind itself.
- `prefetch`: read-ahead ranges nobody waits for yet. A bounded number may be
  queued; a foreground read that wants a range queued behind busy prefetch
  threads cancels it and fetches it itself, so prefetch never delays a
  foreground read (one about to start is waited for: cheaper than a second GET).

Every thread is named `litestream-<tier>_N`; `shutdown()` stops and joins them.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")

IO_WORKERS = 16
TASK_WORKERS = 8
PREFETCH_WORKERS = 4
#: Prefetches queued or running at once; more are dropped (they are only hints).
PREFETCH_QUEUE = 16

_tier = threading.local()


class _Pool(ThreadPoolExecutor):
    """A named pool whose threads know their tier (so nested work can run inline)."""

    def __init__(self, tier: str, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix=f"litestream-{tier}",
                         initializer=setattr, initargs=(_tier, "name", tier))
        self.tier = tier

    def join(self, deadline: float) -> list[str]:
        """Stop taking work, wait for running tasks until `deadline`; names of threads still alive."""
        self.shutdown(wait=False, cancel_futures=True)
        alive = []
        for thread in list(getattr(self, "_threads", ())):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                alive.append(thread.name)
        return alive


def tier_pool(tier: str, workers: int) -> ThreadPoolExecutor:
    """A pool of the caller's own fan-out (a fleet: one database per task) named like the
    process's; its tasks run their per-file work inline (`run_all`), never queued behind it."""
    return _Pool(tier, workers)


def current_tier() -> str | None:
    """The tier of the pool running the calling thread (None: a caller's own thread)."""
    return getattr(_tier, "name", None)


class Executors:
    """The three pools of one process (or of one test that wants small ones)."""

    def __init__(self, io: int = IO_WORKERS, tasks: int = TASK_WORKERS, prefetch: int = PREFETCH_WORKERS,
                 prefetch_queue: int = PREFETCH_QUEUE) -> None:
        self.io = _Pool("io", io)
        self.tasks = _Pool("tasks", tasks)
        self.prefetch = _Pool("prefetch", prefetch)
        self._prefetch_slots = threading.BoundedSemaphore(prefetch_queue)
        self._prefetch_workers = prefetch
        self._prefetching = 0  # prefetches running now
        self._prefetch_lock = threading.Lock()

    @property
    def max_threads(self) -> int:
        """Threads the three pools may run at once."""
        return sum(pool._max_workers for pool in (self.io, self.tasks, self.prefetch))

    def run_all(self, jobs: Iterable[Callable[[], T]]) -> list[T]:
        """Run per-file jobs concurrently on `tasks` (inline when already on a task or I/O thread).

        Every job runs to its end even when one fails (each may find a damaged
        file); then the first failure is raised.
        """
        jobs = list(jobs)
        if len(jobs) <= 1:
            return [job() for job in jobs]
        if current_tier() is not None:
            futures: list[Future[T]] = []
            for job in jobs:
                future: Future[T] = Future()
                try:
                    future.set_result(job())
                except Exception as exc:  # noqa: BLE001 - raised below, after the others ran
                    future.set_exception(exc)
                futures.append(future)
        else:
            futures = [self.tasks.submit(job) for job in jobs]
        errors = [future.exception() for future in futures]
        first = next((error for error in errors if error is not None), None)
        if first is not None:
            raise first
        return [future.result() for future in futures]

    def fetch_all(self, requests: Iterable[Callable[[], T]]) -> list[T]:
        """Run single requests concurrently on `io` (the caller's thread takes the first)."""
        requests = list(requests)
        if not requests:
            return []
        if current_tier() == "io":  # never wait on our own pool
            return [request() for request in requests]
        futures = [self.io.submit(request) for request in requests[1:]]
        try:
            first = requests[0]()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return [first, *gather(futures)]

    def try_prefetch(self, work: Callable[[], Any]) -> Future[Any] | None:
        """Queue `work` as a prefetch, or drop it (None) when enough are queued already."""
        if not self._prefetch_slots.acquire(blocking=False):
            return None

        def run() -> Any:
            with self._prefetch_lock:
                self._prefetching += 1
            try:
                return work()
            finally:
                with self._prefetch_lock:
                    self._prefetching -= 1

        try:
            future = self.prefetch.submit(run)
        except RuntimeError:  # shut down
            self._prefetch_slots.release()
            return None
        future.add_done_callback(lambda _f: self._prefetch_slots.release())
        return future

    @property
    def prefetch_saturated(self) -> bool:
        """Whether every prefetch thread is busy (a queued prefetch would wait behind them)."""
        with self._prefetch_lock:
            return self._prefetching >= self._prefetch_workers

    def shutdown(self, timeout: float = 5.0) -> list[str]:
        """Cancel queued work and join every thread (at most `timeout` s); names still alive."""
        deadline = time.monotonic() + timeout
        alive: list[str] = []
        for pool in (self.prefetch, self.tasks, self.io):
            alive += pool.join(deadline)
        return alive


def gather(futures: list[Future[T]]) -> list[T]:
    """Every result in order; on the first failure cancel what has not started and re-raise."""
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise
