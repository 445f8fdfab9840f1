"""States named by TXID text, time text or `latest`, and the states between two of them."""

from __future__ import annotations

import pytest
from support.replicas import ReplicaFixture

from litestream_vfs.connect import open_replica
from litestream_vfs.errors import ReplicaError
from litestream_vfs.state_range import resolve_state, states_between
from litestream_vfs.timeparse import format_time, format_txid


def test_states_between_bounds(file_replica: ReplicaFixture) -> None:
    replica = open_replica(file_replica.url)
    every = list(replica.chains_for().states)
    assert states_between(replica) == every
    steps = dict(file_replica.step_txids)
    a, b = steps["reprice rock"], steps["vacuum"]
    inside = states_between(replica, format_txid(a), f"0x{b:x}")
    assert inside[0] == a and inside[-1] == b and inside == [t for t in every if a <= t <= b]
    when = format_time(replica.state(b).timestamp)
    assert states_between(replica, a, when)[-1] == b
    with pytest.raises(ReplicaError, match=format_txid(b)):
        states_between(replica, b, a)


def test_resolve_latest_and_times(file_replica: ReplicaFixture) -> None:
    replica = open_replica(file_replica.url)
    assert resolve_state(replica, "latest").txid == file_replica.litestream_txids()[-1]
    assert resolve_state(replica, " now ").txid == file_replica.litestream_txids()[-1]
    first = replica.chains_for().states[0]
    assert resolve_state(replica, format_time(replica.state(first).timestamp)).txid >= first
