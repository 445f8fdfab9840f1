"""Bounded exponential backoff with jitter and an overall deadline for transient faults.

Backends run each logical request (one ranged GET, one LIST page) through
`retry` with client-library retries switched off, so there is exactly one
retry layer: the number of attempts, the time slept between them and the
time spent overall are all bounded here, whatever mix of faults occurs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently to retry: `attempts` calls in total.

    No new attempt starts once `deadline_seconds` have passed since the
    first (None: no deadline), so a request in trouble ends within the
    deadline plus one attempt's own timeouts.
    """

    attempts: int = 5
    base_seconds: float = 0.1
    max_seconds: float = 3.0
    deadline_seconds: float | None = 30.0

    def delays(self) -> Iterator[float]:
        """Full-jitter delays before attempts 2..n (spreads out thundering herds)."""
        for retry_number in range(self.attempts - 1):
            yield random.uniform(0, min(self.max_seconds, self.base_seconds * 2 ** retry_number))


def retry(call: Callable[[], T], is_transient: Callable[[BaseException], bool],
          policy: Backoff = Backoff(), sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> T:
    """Run `call`, retrying transient failures; the last failure propagates."""
    delays = policy.delays()
    began = clock()
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            if policy.deadline_seconds is not None and clock() + delay - began >= policy.deadline_seconds:
                raise
            sleep(delay)
