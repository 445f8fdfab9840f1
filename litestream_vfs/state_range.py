"""What users type for a state (TXID text, time text, `latest`) and the states between two.

Every investigating tool (log, diff, blame, bisect) reads "from X to Y" the
same way: X and Y are TXIDs (hex, up to 16 digits, 0x optional) or times;
X defaults to the earliest state, Y to the latest.
"""

from __future__ import annotations

import re

from .connect import select_state
from .errors import ReplicaError, TimeParseError
from .replica import Replica, State
from .timeparse import format_txid

_TXID_TEXT = re.compile(r"(0x)?[0-9a-fA-F]{1,16}")


def resolve_state(replica: Replica, when: str | int) -> State:
    """A state from an int TXID, hex TXID text (up to 16 digits, 0x optional), `latest`, or time text."""
    if isinstance(when, int):
        return replica.state(when)
    text = when.strip()
    if _TXID_TEXT.fullmatch(text):
        return select_state(replica, txid=text)
    try:
        return select_state(replica, time=text)
    except TimeParseError:
        raise TimeParseError(f"{text!r} is neither a TXID (hex, e.g. 000000000000002a) nor a time (RFC 3339 "
                             "like 2026-01-02T15:04:05Z, 'latest', or e.g. '5 minutes ago')") from None


def bound(replica: Replica, when: str | int | None) -> int | None:
    """The TXID `when` names, None when not given."""
    return None if when is None else resolve_state(replica, when).txid


def states_between(replica: Replica, since: str | int | None = None,
                   until: str | int | None = None) -> list[int]:
    """Restorable TXIDs from `since` (default: earliest) to `until` (default: latest), oldest first."""
    states = replica.chains_for().states
    low, high = bound(replica, since), bound(replica, until)
    low = states[0] if low is None else low
    high = states[-1] if high is None else high
    if low > high:
        raise ReplicaError(f"--from TXID {format_txid(low)} is after --to TXID {format_txid(high)}")
    return [t for t in states if low <= t <= high]
