"""The local engine: one process, `jobs` threads, bounded whatever the number of databases;
per-database failures kept apart. Against real Litestream directory replication."""

from __future__ import annotations

import gc
import threading

import apsw

from litestream_vfs.executors import TASK_WORKERS
from litestream_vfs.fleet_local import At, Part, describe_error, run_part
from litestream_vfs.fleet_query import fleet
from litestream_vfs.fleet_table import merge_tables
from litestream_vfs.process import PROCESS
from litestream_vfs.replica import Replica
from litestream_vfs.storage.tree import list_databases, open_directory
from support.fleet import CORRUPT
from support.proxy import Proxy
from support.truth import through


def test_a_part_reads_each_database_at_one_txid_and_keeps_failures_apart(fleet_replicas):
    fleet_replica = fleet_replicas["file"]
    store = open_directory(fleet_replica.dir_url)
    try:
        listed = list_databases(store)
    finally:
        store.close()
    sql = "SELECT count(*), sum(qty) FROM items"
    healthy = tuple((name, tuple(listed[name])) for name in (fleet_replica.names[3], fleet_replica.names[7]))
    truth = fleet_replica.truth(sql, {name: 1 for name in fleet_replica.names})
    ticks: list[None] = []
    result = run_part(Part(fleet_replica.dir_url, sql, At(txid=1), healthy, 2), lambda: ticks.append(None))
    assert [tuple(r.values()) for r in merge_tables([result.table]).to_pylist()] == \
        [row for row in truth if row[0] in dict(healthy)]
    assert result.errors == {} and len(ticks) == 2
    assert result.stats["databases"] == 2 and result.stats["lists"] == 0  # the listing given is used
    mixed = run_part(Part(fleet_replica.dir_url, sql, At(txid=1), (healthy[0], (CORRUPT, tuple(listed[CORRUPT]))), 2))
    assert list(mixed.errors) == [CORRUPT] and mixed.table.num_rows == 1


def test_sqlite_errors_keep_their_kind():
    assert describe_error(apsw.SQLError("no such table: t")) == "SQLError: no such table: t"
    assert describe_error(ValueError("two\n lines")) == "two lines"


def test_failures_per_database_do_not_stop_the_others(fleet_replicas):
    """A query every database refuses is one message per database (SQLite's kind kept), no rows."""
    fleet_replica = fleet_replicas["file"]
    result = fleet(fleet_replica.dir_url, "SELECT nope FROM items")
    assert set(result.errors) == {*fleet_replica.names, CORRUPT}
    assert result.errors[fleet_replica.names[0]] == "SQLError: no such column: nope"
    assert result.table.num_rows == 0


def test_bounded_threads_and_nothing_kept_per_database(fleet_replicas):
    """`jobs` worker threads, no poller per database, and no replica or connection left once done."""
    fleet_replica = fleet_replicas["file"]
    gc.collect()
    replicas_before = sum(isinstance(o, Replica) for o in gc.get_objects())
    registry_before = len(PROCESS.replicas())
    threads_before = threading.active_count()
    others = set(threading.enumerate())  # e.g. pollers of an earlier test's followers
    seen: list[int] = []
    jobs = 3
    result = fleet(fleet_replica.dir_url, "SELECT count(*) FROM items", jobs=jobs,
                   progress=lambda done, total: seen.append(threading.active_count()))
    assert len(seen) == len(fleet_replica.names) + 1  # progress once per database
    fetch_pool = PROCESS.executors.max_threads
    assert max(seen) <= threads_before + jobs + fetch_pool
    assert not [t for t in set(threading.enumerate()) - others
                if t.name.startswith(("litestream-fleet", "litestream-poll"))]
    assert len(PROCESS.replicas()) == registry_before
    gc.collect()
    assert sum(isinstance(o, Replica) for o in gc.get_objects()) == replicas_before
    assert result.table.num_rows == len(fleet_replica.names)


def test_jobs_databases_are_in_flight_at_once(fleet_replicas, seaweedfs, monkeypatch):
    """`jobs` databases are read at once, each doing its own requests (not queued behind the
    process's small per-file pool), with one LIST and at most three GETs per database."""
    fleet_replica = fleet_replicas["s3"]
    for key, value in fleet_replica.env.items():
        monkeypatch.setenv(key, value)
    jobs = TASK_WORKERS * 2
    with Proxy(seaweedfs.endpoint_url, latency=0.02) as proxy:
        result = fleet(through(proxy, fleet_replica.dir_url), "SELECT count(*) FROM items", jobs=jobs)
        counts = proxy.counts()
    assert TASK_WORKERS < proxy.max_concurrency_seen <= jobs
    assert counts["LIST"] == 1
    assert counts["GET"] <= 3 * result.stats["databases"]
    assert result.table.num_rows == len(fleet_replica.names)
