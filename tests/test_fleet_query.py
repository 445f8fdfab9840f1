"""`litestream_vfs.fleet`: one query over a directory of replicas written by real Litestream
directory replication, checked against `litestream restore` of every database."""

from __future__ import annotations

import pytest

from litestream_vfs.errors import ReplicaError
from litestream_vfs.fleet_query import fleet, resolve_at
from support.fleet import CORRUPT

ITEMS = "SELECT id, name, qty, price FROM items ORDER BY id"


@pytest.fixture(params=["file", "s3"])
def fleet_replica(request, fleet_replicas, monkeypatch):
    replica = fleet_replicas[request.param]
    for key, value in replica.env.items():
        monkeypatch.setenv(key, value)
    return replica


def rows(result) -> list[tuple]:
    return [tuple(row.values()) for row in result.table.to_pylist()]


def assert_only_the_corrupt_one_failed(result) -> None:
    """One line for the damaged replica, naming the failed checksum or the replica (no state left)."""
    assert list(result.errors) == [CORRUPT]
    message = result.errors[CORRUPT]
    assert "\n" not in message and ("checksum" in message or CORRUPT in message)


def test_latest_is_the_union_of_every_restore(fleet_replica):
    result = fleet(fleet_replica.dir_url, ITEMS)
    assert result.table.column_names == ["db", "id", "name", "qty", "price"]
    assert rows(result) == fleet_replica.truth(ITEMS)
    assert_only_the_corrupt_one_failed(result)
    assert result.stats["databases"] == len(fleet_replica.names) + 1
    assert result.stats["lists"] == 1  # one listing for every database and level


def test_a_past_time_is_the_union_of_every_restore_at_that_time(fleet_replica):
    result = fleet(fleet_replica.dir_url, ITEMS, time=fleet_replica.between)
    assert rows(result) == fleet_replica.truth(ITEMS, fleet_replica.round_one)
    assert rows(result) != fleet_replica.truth(ITEMS)  # round two changed most tenants since
    assert_only_the_corrupt_one_failed(result)


def test_a_txid_is_read_in_every_database(fleet_replica):
    result = fleet(fleet_replica.dir_url, "SELECT count(*), sum(qty) FROM items", txid="0000000000000001", jobs=4)
    first = {name: 1 for name in fleet_replica.names}
    assert rows(result) == fleet_replica.truth("SELECT count(*), sum(qty) FROM items", first)


def test_match_selects_databases_by_their_path(fleet_replica):
    result = fleet(fleet_replica.dir_url, "SELECT v FROM meta WHERE k = 'tenant'", match="eu/*")
    expected = [name for name in fleet_replica.names if name.startswith("eu/")]
    assert result.table.column("db").to_pylist() == expected
    assert result.errors == {}
    assert result.table.column("v").to_pylist() == [int(name[-6:-3]) for name in expected]


def test_bad_input_is_one_clear_error(fleet_replicas, tmp_path):
    with pytest.raises(ReplicaError, match="does not exist"):
        fleet(f"{tmp_path}/missing/", "SELECT 1")
    with pytest.raises(ReplicaError, match=r"none of the 53 databases .* matches 'nothing\*'"):
        fleet(fleet_replicas["file"].dir_url, "SELECT 1", match="nothing*")
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        fleet(fleet_replicas["file"].dir_url, "SELECT 1", engine="spark")
    with pytest.raises(ValueError, match="not both"):
        resolve_at("1 hour ago", "01")


def test_a_relative_time_is_fixed_once_for_every_database():
    at = resolve_at("5 minutes ago")
    assert at.time is not None and at.txid is None
    assert resolve_at("latest") == resolve_at() == resolve_at(txid="latest")
    assert resolve_at(txid="0a").txid == 10
