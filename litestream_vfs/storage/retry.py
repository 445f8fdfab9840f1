"""Bounded exponential backoff with jitter for transient read faults.

Client libraries retry failed *requests*, but not a response body that ends
early or a connection reset mid-stream; backends wrap such reads in `retry`.
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
    """How often and how patiently to retry: `attempts` calls in total."""

    attempts: int = 4
    base_seconds: float = 0.05
    max_seconds: float = 2.0

    def delays(self) -> Iterator[float]:
        """Full-jitter delays before attempts 2..n (spreads out thundering herds)."""
        for retry in range(self.attempts - 1):
            yield random.uniform(0, min(self.max_seconds, self.base_seconds * 2 ** retry))


def retry(call: Callable[[], T], is_transient: Callable[[BaseException], bool],
          policy: Backoff = Backoff(), sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `call`, retrying transient failures; the last failure propagates."""
    delays = policy.delays()
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            sleep(delay)
