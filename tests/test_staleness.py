"""`max_lag` values and the check, on a real replica whose newest state is minutes old."""

from __future__ import annotations

import pytest

from litestream_vfs.connect import open_replica
from litestream_vfs.errors import ReplicaError, StaleReplica
from litestream_vfs.poller import Poller
from litestream_vfs.staleness import Freshness, parse_seconds


@pytest.mark.parametrize("text, expected", [(None, 7.0), ("", 7.0), ("off", None), ("0", None), ("2.5", 2.5)])
def test_max_lag_values(text, expected):
    assert parse_seconds("max_lag", text, 7.0) == expected


@pytest.mark.parametrize("text", ["soon", "-1", "nan"])
def test_bad_max_lag_values_name_the_parameter(text):
    with pytest.raises(ReplicaError, match=f"max_lag='{text}'"):
        parse_seconds("max_lag", text, None)


def test_the_check_names_the_age_and_reports_the_polls(file_replica):
    replica = open_replica(file_replica.url)
    newest = replica.latest()
    poller = Poller(replica, 1.0)
    Freshness(replica, poller, None).check(newest)  # off: never raises
    Freshness(replica, poller, 24 * 3600).check(newest)  # a day: fresh enough
    with pytest.raises(StaleReplica, match=r"replica stale: newest state \d+ s old \(max_lag 0.001 s\); "
                                           r"last poll error: none"):
        Freshness(replica, poller, 0.001).check(newest)
    report = Freshness(replica, poller, 5).report()
    assert report["polls"] == 0 and report["poll_errors"] == 0 and report["last_poll_error"] is None
    assert report["max_lag"] == 5 and report["seconds_since_poll_ok"] >= 0
