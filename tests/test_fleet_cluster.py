"""Fleets on a real local Ray cluster and a real local Dask cluster: the same table as the local engine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from litestream_vfs.fleet_cluster import run_share, split
from litestream_vfs.fleet_local import At, Part
from litestream_vfs.fleet_query import fleet
from litestream_vfs.process import PROCESS
from litestream_vfs.storage.base import LtxObject

ITEMS = "SELECT id, name, qty, price FROM items ORDER BY id"
CLUSTERS = {"ray": "ray_cluster", "dask": "dask_client"}


@pytest.mark.parametrize("backend", ["file", "s3"])
@pytest.mark.parametrize("engine", ["ray", "dask"])
def test_a_cluster_gives_the_local_engines_table(engine, backend, request, fleet_replicas, monkeypatch):
    request.getfixturevalue(CLUSTERS[engine])
    fleet_replica = fleet_replicas[backend]
    for key, value in fleet_replica.env.items():
        monkeypatch.setenv(key, value)
    done: list[tuple[int, int]] = []
    for time in (None, fleet_replica.between):
        local = fleet(fleet_replica.dir_url, ITEMS, time=time)
        spread = fleet(fleet_replica.dir_url, ITEMS, time=time, engine=engine, jobs=4,
                       progress=lambda *counts: done.append(counts))
        assert spread.table.schema == local.table.schema
        assert spread.table.equals(local.table)
        assert spread.errors == local.errors and spread.errors
        assert spread.stats["databases"] == local.stats["databases"]
        assert spread.stats["gets"] > 0
    total = len(fleet_replica.names) + len(spread.errors)
    assert done == [(n, total) for n in range(1, total + 1)] * 2


def test_mixed_types_across_workers_merge_like_one_process(request, fleet_replicas):
    """A column that is an integer in some tenants and text in others is typed once, after the merge."""
    request.getfixturevalue("dask_client")
    fleet_replica = fleet_replicas["file"]
    sql = "SELECT CASE WHEN v % 2 THEN v ELSE 'even ' || v END AS mixed FROM meta"
    local = fleet(fleet_replica.dir_url, sql)
    spread = fleet(fleet_replica.dir_url, sql, engine="dask")
    assert spread.table.equals(local.table)
    assert str(local.table.schema.field("mixed").type) == "string"


def test_split_cuts_contiguous_near_equal_shares():
    databases = tuple((f"{i}.db", (LtxObject(9, 1, 1, 10),)) for i in range(7))
    part = Part("/dir/", "SELECT 1", At(), databases, 4)
    shares = split(part, 3)
    assert [len(s.databases) for s in shares] == [2, 2, 3]
    assert tuple(d for s in shares for d in s.databases) == databases
    assert len(split(part, 100)) == 7


def test_a_worker_takes_the_drivers_register_settings(fleet_replicas):
    fleet_replica = fleet_replicas["file"]
    saved = PROCESS.settings
    databases = ((fleet_replica.names[0], ()),)
    try:
        wanted = replace(saved, cache_bytes=saved.cache_bytes // 2, poll_seconds=7.0)
        share = Part(fleet_replica.dir_url, "SELECT 1", At(), databases, 1)
        result = run_share(share, wanted)
        assert (PROCESS.settings.cache_bytes, PROCESS.settings.poll_seconds) == (wanted.cache_bytes, 7.0)
        assert list(result.errors) == [fleet_replica.names[0]]  # no files given: a clear error, not a crash
    finally:
        PROCESS.configure(cache_bytes=saved.cache_bytes, poll_seconds=saved.poll_seconds)
