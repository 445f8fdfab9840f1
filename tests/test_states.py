"""Finding states by TXID and by time in a real replica's history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from litestream_vfs.connect import open_replica
from litestream_vfs.errors import OutOfHistory


def test_every_state_is_found_at_its_own_time_and_between_times(file_replica):
    replica = open_replica(file_replica.url)
    history = replica.history()
    assert [e.txid for e in history] == list(replica.chains_for().states)
    for entry, following in zip(history, history[1:] + [None]):
        assert replica.state_at(entry.timestamp).txid == entry.txid
        if following is not None and following.timestamp - entry.timestamp > timedelta(microseconds=2000):
            assert replica.state_at(entry.timestamp + timedelta(microseconds=1000)).txid == entry.txid
    assert replica.latest().txid == history[-1].txid


def test_outside_the_history_names_what_is_available(file_replica):
    replica = open_replica(file_replica.url)
    first = replica.history()[0]
    with pytest.raises(OutOfHistory, match="available states: TXID"):
        replica.state_at(first.timestamp - timedelta(days=1))
    with pytest.raises(OutOfHistory, match=f"TXID {replica.chains_for().latest + 1000:016x} is not a restorable state"):
        replica.state(replica.chains_for().latest + 1000)
