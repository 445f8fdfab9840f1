"""The one retry layer every backend runs its requests through: what is retried, how long
it waits, and that it gives up with the last failure. Backends' own classification of
errors (which HTTP statuses are transient) is tested with each backend against real
servers (test_storage_s3.py, test_faults.py, test_storage_webdav.py)."""

from __future__ import annotations

import pytest

from litestream_vfs.storage.retry import Backoff, retry


class Clock:
    """Time that advances only when `sleep` is called (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: type[BaseException] = ConnectionResetError, result: str = "done"):
    """A call that raises `error` (a new one each time, numbered) `times` times, then returns `result`."""
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error(f"failure {len(calls)}")
        return result

    return call, calls


def is_reset(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionResetError)


def test_transient_failures_are_retried_until_the_call_succeeds():
    call, calls = failing(3)
    clock = Clock()
    assert retry(call, is_reset, Backoff(attempts=5), clock.sleep, clock) == "done"
    assert len(calls) == 4 and len(clock.sleeps) == 3


def test_a_success_at_once_never_sleeps():
    call, calls = failing(0)
    clock = Clock()
    assert retry(call, is_reset, Backoff(), clock.sleep, clock) == "done"
    assert calls == [1] and clock.sleeps == []


def test_gives_up_after_the_attempts_with_the_last_failure():
    call, calls = failing(100)
    clock = Clock()
    with pytest.raises(ConnectionResetError, match="^failure 3$"):
        retry(call, is_reset, Backoff(attempts=3, deadline_seconds=None), clock.sleep, clock)
    assert len(calls) == 3 and len(clock.sleeps) == 2


def test_a_permanent_failure_is_raised_at_once():
    call, calls = failing(1, ValueError)
    clock = Clock()
    with pytest.raises(ValueError, match="failure 1"):
        retry(call, is_reset, Backoff(), clock.sleep, clock)
    assert calls == [1] and clock.sleeps == []


def test_a_permanent_failure_after_transient_ones_ends_the_retries():
    errors = iter([ConnectionResetError("reset"), PermissionError("denied")])

    def call() -> None:
        raise next(errors)

    clock = Clock()
    with pytest.raises(PermissionError, match="denied"):
        retry(call, is_reset, Backoff(attempts=5), clock.sleep, clock)
    assert len(clock.sleeps) == 1


def test_an_interrupt_is_never_retried_even_if_classified_transient():
    call, calls = failing(1, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        retry(call, lambda exc: True, Backoff(), lambda s: None)
    assert calls == [1]


@pytest.mark.parametrize("policy", [Backoff(), Backoff(attempts=12, base_seconds=0.2, max_seconds=1.0)])
def test_delays_are_full_jitter_under_a_doubling_cap(policy):
    """Delay n (before attempt n+2) lies in [0, min(max, base * 2**n)]; over many draws they spread."""
    draws = [list(policy.delays()) for _ in range(300)]
    assert all(len(delays) == policy.attempts - 1 for delays in draws)
    for n in range(policy.attempts - 1):
        cap = min(policy.max_seconds, policy.base_seconds * 2 ** n)
        column = [delays[n] for delays in draws]
        assert all(0 <= d <= cap for d in column), n
        assert max(column) > 0.7 * cap and min(column) < 0.3 * cap, n  # jitter, not a fixed delay


def test_the_deadline_stops_retrying_before_the_attempts_run_out():
    policy = Backoff(attempts=1000, base_seconds=0.5, max_seconds=0.5, deadline_seconds=3.0)
    clock = Clock()
    call, calls = failing(10_000)
    with pytest.raises(ConnectionResetError):
        retry(call, is_reset, policy, clock.sleep, clock)
    assert 1 < len(calls) < policy.attempts
    assert clock.now < policy.deadline_seconds  # no sleep would carry past the deadline


def test_time_spent_in_attempts_counts_against_the_deadline():
    """Slow attempts (timeouts) use up the deadline as much as the sleeps between them."""
    clock = Clock()
    calls: list[int] = []

    def slow_failure() -> None:
        calls.append(1)
        clock.now += 10.0
        raise ConnectionResetError("timed out")

    with pytest.raises(ConnectionResetError):
        retry(slow_failure, is_reset, Backoff(attempts=50, deadline_seconds=25.0), clock.sleep, clock)
    assert len(calls) == 3  # the third attempt ends past 25 s: no fourth one starts


def test_no_deadline_runs_every_attempt():
    clock = Clock()
    call, calls = failing(10_000)
    with pytest.raises(ConnectionResetError):
        retry(call, is_reset, Backoff(attempts=7, base_seconds=100, max_seconds=100, deadline_seconds=None),
              clock.sleep, clock)
    assert len(calls) == 7
