"""The worker tiers: nested work never waits on its own pool, prefetches are bounded and droppable."""

from __future__ import annotations

import threading

from litestream_vfs.executors import Executors, current_tier
from support.threads import run_threads


def test_nested_per_file_work_runs_inline_on_a_full_tasks_pool():
    """One task thread, jobs that themselves run per-file jobs: finishes (the old shared pool hung)."""
    pools = Executors(io=1, tasks=1, prefetch=1)
    try:
        def leaf(n: int) -> tuple[int, str | None]:
            return n, current_tier()

        def per_file(n: int) -> list:
            return pools.run_all([lambda k=k: leaf(k) for k in range(n, n + 3)])

        results, = run_threads([lambda: pools.run_all([lambda n=n: per_file(n) for n in range(0, 30, 3)])], timeout=30)
        assert [n for group in results for n, _ in group] == list(range(30))
        assert {tier for group in results for _, tier in group} == {"tasks"}
    finally:
        assert pools.shutdown(5) == []


def test_requests_issued_from_io_threads_run_inline():
    pools = Executors(io=1, tasks=1, prefetch=1)
    try:
        inner = pools.io.submit(lambda: pools.fetch_all([lambda: current_tier(), lambda: current_tier()]))
        assert inner.result(timeout=10) == ["io", "io"]
    finally:
        pools.shutdown(5)


def test_every_job_runs_before_the_first_failure_is_raised():
    pools = Executors(io=2, tasks=2, prefetch=1)
    ran = []
    try:
        def job(n: int) -> int:
            ran.append(n)
            if n % 2:
                raise ValueError(f"job {n}")
            return n

        try:
            pools.run_all([lambda n=n: job(n) for n in range(6)])
        except ValueError as exc:
            assert str(exc) == "job 1"
        assert sorted(ran) == list(range(6))
    finally:
        pools.shutdown(5)


def test_prefetches_beyond_the_queue_are_dropped_and_threads_are_named_and_joined():
    pools = Executors(io=1, tasks=1, prefetch=1, prefetch_queue=2)
    gate = threading.Event()
    try:
        first = pools.try_prefetch(gate.wait)
        second = pools.try_prefetch(lambda: None)
        assert first is not None and second is not None
        assert pools.try_prefetch(lambda: None) is None  # dropped: prefetches are hints
        assert second.cancel()  # queued behind the first: a foreground read may take it over
        threads = list(pools.prefetch._threads)
        assert threads and all(t.name.startswith("litestream-prefetch") for t in threads)
    finally:
        gate.set()
        assert pools.shutdown(5) == []
    assert not [t for t in threads if t.is_alive()]
