"""Faults between us and S3: transient ones are retried within bounds, permanent ones
fail at once, and no mix of faults ever turns into rows from a wrong state.

Everything runs against a real Litestream replica on SeaweedFS, through the
fault-injecting proxy; ground truth is the real `litestream restore`.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Iterator

import apsw
import pytest

import litestream_vfs
from litestream_vfs.connect import connect
from litestream_vfs.errors import LitestreamVFSError, ObjectNotFound, StorageError
from litestream_vfs.process import PROCESS
from litestream_vfs.storage import open_storage
from litestream_vfs.storage import s3 as s3_module
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.storage.retry import Backoff
from support.proxy import FaultPlan, Proxy
from support.replicas import ReplicaFixture
from support.truth import ground_truth, table_contents, through

FAULT_KINDS = ("delay", "status", "reset", "truncate", "drop")
QUERIES = 30
FAULT_FRACTION = 0.10
SMALL_CACHE = 1024 * 1024





@pytest.fixture(scope="module")
def s3_replica(replica_factory, seaweedfs) -> ReplicaFixture:
    return replica_factory.get("0.5.17", "s3", seaweedfs)


@pytest.fixture
def proxy(seaweedfs, s3_replica, monkeypatch) -> Iterator[Proxy]:
    for key, value in s3_replica.env.items():
        monkeypatch.setenv(key, value)
    with Proxy(seaweedfs.endpoint_url) as running:
        yield running


@pytest.fixture
def short_timeouts(monkeypatch) -> s3_module.Timeouts:
    """Timeouts short enough that a dropped request costs a fraction of a second."""
    timeouts = s3_module.Timeouts(connect=1.0, read=0.3)
    monkeypatch.setattr(s3_module, "TIMEOUTS", timeouts)
    return timeouts


def some_object(storage) -> LtxObject:
    return max(storage.list_files(), key=lambda o: o.size)


def get_attempts(proxy: Proxy) -> int:
    return proxy.counts()["GET"]


# -- the policy, one fault kind at a time ------------------------------------------------
def test_client_config_bounds_every_request(proxy, s3_replica):
    storage = open_storage(through(proxy, s3_replica.url))
    assert storage.transport.timeouts == s3_module.TIMEOUTS  # connect and socket-read bounds
    assert s3_module.BACKOFF.deadline_seconds is not None


@pytest.mark.parametrize("kind", ["status", "reset", "truncate", "drop"])
def test_transient_fault_is_retried_until_it_clears(proxy, s3_replica, short_timeouts, kind):
    storage = open_storage(through(proxy, s3_replica.url))
    obj = some_object(storage)
    expected = storage.read_all(obj)
    proxy.set_fault(FaultPlan(kind, 0.5, seed=3, kinds=frozenset({"GET"}), max_hold=5.0))
    for _ in range(6):
        assert storage.read_all(obj) == expected
    faults = sum(1 for r in proxy.records() if r.fault == kind)
    assert faults > 0, "the seeded plan injected nothing: the test proved nothing"


@pytest.mark.parametrize("kind, status", [("status", 500), ("status", 503), ("reset", None),
                                          ("truncate", None), ("drop", None)])
def test_persistent_transient_fault_gives_up_naming_the_object(proxy, s3_replica, short_timeouts,
                                                               kind, status):
    storage = open_storage(through(proxy, s3_replica.url))
    obj = some_object(storage)
    proxy.reset()
    proxy.set_fault(FaultPlan(kind, 1.0, kinds=frozenset({"GET"}), status=status or 503, max_hold=5.0))
    with pytest.raises(StorageError, match=f"{obj.level:04d}/{obj.name}.*gave up after "
                                           f"{s3_module.BACKOFF.attempts} attempts") as info:
        storage.read_range(obj, 0, 100)
    assert not isinstance(info.value, ObjectNotFound)
    assert storage.counters.gets == s3_module.BACKOFF.attempts  # the proxy logs a drop late


def test_list_faults_are_retried(proxy, s3_replica):
    storage = open_storage(through(proxy, s3_replica.url))
    expected = storage.list_files()
    proxy.set_fault(FaultPlan("status", 0.5, seed=1, kinds=frozenset({"LIST"})))
    for _ in range(6):
        assert storage.list_files() == expected
    assert any(r.fault for r in proxy.records())


def test_deadline_stops_retrying_before_the_attempts_run_out(proxy, s3_replica, monkeypatch):
    patient = Backoff(attempts=1000, base_seconds=0.05, max_seconds=0.05, deadline_seconds=0.5)
    monkeypatch.setattr(s3_module, "BACKOFF", patient)
    storage = open_storage(through(proxy, s3_replica.url))
    obj = some_object(storage)
    proxy.reset()
    proxy.set_fault(FaultPlan("status", 1.0, kinds=frozenset({"GET"})))
    with pytest.raises(StorageError, match=f"throttling.*{obj.name}.*gave up after"):
        storage.read_range(obj, 0, 100)
    assert 1 < get_attempts(proxy) < patient.attempts


@pytest.mark.parametrize("status", [403, 404])
def test_permanent_status_fails_after_one_attempt(proxy, s3_replica, status):
    storage = open_storage(through(proxy, s3_replica.url))
    obj = some_object(storage)
    proxy.reset()
    proxy.set_fault(FaultPlan("status", 1.0, kinds=frozenset({"GET"}), status=status))
    error = ObjectNotFound if status == 404 else StorageError
    with pytest.raises(error, match=obj.name):
        storage.read_range(obj, 0, 100)
    assert get_attempts(proxy) == 1


def test_missing_object_is_not_retried(proxy, s3_replica):
    storage = open_storage(through(proxy, s3_replica.url))
    ghost = LtxObject(0, 0xFFFF, 0xFFFF, 1000)
    proxy.reset()
    with pytest.raises(ObjectNotFound, match=ghost.name):
        storage.read_range(ghost, 0, 10)
    assert get_attempts(proxy) == 1


# -- a randomized mix: never a wrong answer ----------------------------------------------
@pytest.fixture
def small_cache() -> Iterator[int]:
    before = PROCESS.settings.cache_bytes
    litestream_vfs.register(cache_size=SMALL_CACHE)
    yield SMALL_CACHE
    litestream_vfs.register(cache_size=before)


def test_random_faults_never_give_a_wrong_answer(proxy, s3_replica, short_timeouts, small_cache):
    txids = s3_replica.litestream_txids()
    truths = {txid: ground_truth(s3_replica.restore(txid)) for txid in txids}
    url = through(proxy, s3_replica.url)
    rng = random.Random(20240611)
    outcomes: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    proxy.reset()
    for query in range(QUERIES):
        proxy.set_fault(FaultPlan(rng.choice(FAULT_KINDS), FAULT_FRACTION, seed=query,
                                  kinds=frozenset({"GET", "LIST"}), delay=0.05, max_hold=5.0))
        txid = rng.choice(txids)
        try:
            connection = connect(url, txid=f"{txid:016x}")
            try:
                got = table_contents(connection)
            finally:
                connection.close()
        except (apsw.Error, LitestreamVFSError) as exc:
            outcomes["clean errors"] += 1
            errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            continue
        outcomes["exact matches" if got == truths[txid] else "wrong answers"] += 1
    proxy.set_fault(None)
    records = proxy.records()
    injected = collections.Counter(r.fault for r in records if r.fault)
    print(f"\nfault test: {QUERIES} queries over {len(txids)} TXIDs, {len(records)} requests, "
          f"faults injected {sum(injected.values())} {dict(injected)}; {dict(outcomes)}")
    for message, count in errors.most_common():
        print(f"  {count} x {message}")
    assert outcomes["wrong answers"] == 0
    assert sum(injected.values()) >= 20, "too few faults to mean anything"
    assert outcomes["exact matches"] >= 0.9 * QUERIES, "retries should hide almost every fault"
