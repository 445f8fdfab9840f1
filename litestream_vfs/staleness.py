"""`max_lag`: a follower fails loudly instead of serving an old state in silence.

A connection following `latest` refuses a read transaction when the newest
state it can see is older than `max_lag` seconds, or when polls have failed
for longer than that; the error names the age and the last poll error.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .errors import ReplicaError, StaleReplica

if TYPE_CHECKING:
    from .poller import Poller
    from .replica import Replica
    from .states import State


def parse_seconds(name: str, text: str | None, default: float | None) -> float | None:
    """A non-negative number of seconds from a URI parameter (0 or off: None), else `default`."""
    if text is None or text == "":
        return default
    if text.lower() in ("off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ReplicaError(f"{name}={text!r} is not a number of seconds") from None
    if value < 0 or value != value:
        raise ReplicaError(f"{name}={text!r} must be a number of seconds >= 0")
    return value or None


class Freshness:
    """One connection's view of how fresh its replica is: the `max_lag` check and the figures."""

    def __init__(self, replica: Replica, poller: Poller, max_lag: float | None) -> None:
        self.replica = replica
        self.poller = poller
        #: Seconds: a read transaction at `latest` fails if the replica is staler (None: off).
        self.max_lag = max_lag

    def check(self, newest: State) -> None:
        """Raise StaleReplica when `newest` (the state a follower would read) is too old, or
        polls have failed for longer than `max_lag`."""
        if self.max_lag is None:
            return
        now = time.time()
        age = now - newest.timestamp.timestamp()
        failing = self.poller.failing_since
        error = self.poller.last_error
        if age > self.max_lag or (failing is not None and now - failing > self.max_lag):
            raise StaleReplica(f"replica stale: newest state {age:.0f} s old (max_lag {self.max_lag:g} s); "
                               f"last poll error: {error if error is not None else 'none'}")

    def report(self) -> dict[str, object]:
        """What `litestream_stats` shows of polling: how often, how often it failed, the last error."""
        confirmed = self.replica.lister.last_success
        error = self.poller.last_error
        return {"polls": self.poller.polls, "poll_errors": self.poller.errors,
                "last_poll_error": None if error is None else str(error),
                "seconds_since_poll_ok": None if confirmed is None else round(time.time() - confirmed, 3),
                "max_lag": self.max_lag}
