"""Threads in tests: named, joined with a deadline, and their failures fail the test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class ThreadFailures(AssertionError):
    """Raised in the test's thread when one of its threads failed or did not finish."""


def run_threads(targets: Sequence[Callable[[], Any]], timeout: float = 120.0, name: str = "test") -> list[Any]:
    """Run each target in its own thread; return their results in order.

    Raises ThreadFailures (chained to the first exception) if any thread raised,
    or if any is still running after `timeout` seconds: a hang is a failure too.
    """
    results: list[Any] = [None] * len(targets)
    errors: list[tuple[int, BaseException]] = []
    lock = threading.Lock()

    def run(i: int, target: Callable[[], Any]) -> None:
        try:
            results[i] = target()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            with lock:
                errors.append((i, exc))

    threads = [threading.Thread(target=run, args=(i, target), name=f"{name}-{i}", daemon=True)
               for i, target in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    hung = [thread.name for thread in threads if thread.is_alive()]
    if hung:
        raise ThreadFailures(f"{len(hung)} thread(s) still running after {timeout:g} s: {', '.join(hung)}")
    if errors:
        i, first = errors[0]
        raise ThreadFailures(f"{len(errors)} of {len(threads)} thread(s) failed; {name}-{i}: "
                             f"{type(first).__name__}: {first}") from first
    return results


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `condition` every 50 ms until it holds; AssertionError after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def litestream_threads() -> list[str]:
    """Names of the package's threads now running (all are named `litestream-...`)."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("litestream-"))
