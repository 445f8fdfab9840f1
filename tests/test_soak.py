"""Soak (opt-in: pytest -m slow): processes x threads query random states of the S3
replica through the proxy for a while; memory stays bounded, nothing leaks.

Each worker process reports its errors, wrong answers, peak RSS, and its thread
and descriptor counts before the first connection and after the last one closed.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.proxy import Proxy
from support.truth import ground_truth, through

pytestmark = pytest.mark.slow

PROCESSES = 2
THREADS = 4
SECONDS = 60.0
#: Table compared on every query (small enough to read often, changed by the workload).
TABLES = ("Artist", "Genre", "MediaType", "Playlist")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _pool_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(("litestream-io", "litestream-tasks", "litestream-prefetch")))


def _worker(url: str, env: dict[str, str], truths: dict[int, dict[str, list]], seed: int,
            seconds: float, threads: int) -> dict[str, object]:
    """One process: `threads` threads each opening fresh connections at random TXIDs."""
    os.environ.update(env)
    import apsw

    import litestream_vfs
    from litestream_vfs.connect import connect
    from litestream_vfs.executors import IO_WORKERS, PREFETCH_WORKERS, TASK_WORKERS
    from litestream_vfs.process import DEFAULT_POLL_SECONDS

    litestream_vfs.register(cache_size=4 * 1024 * 1024)
    baseline_threads, baseline_fds = threading.active_count(), _open_fds()
    deadline = time.monotonic() + seconds
    txids = sorted(truths)

    def run(thread_seed: int) -> tuple[int, int, int]:
        rng = random.Random(thread_seed)
        queries = errors = wrong = 0
        while time.monotonic() < deadline:
            txid = rng.choice(txids + [None])  # None: follow latest
            try:
                connection = connect(url, txid=None if txid is None else f"{txid:016x}")
                try:
                    table = rng.choice(TABLES)
                    got = connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
                finally:
                    connection.close()
            except (apsw.Error, litestream_vfs.LitestreamVFSError):
                errors += 1
                continue
            finally:
                queries += 1
            if got != truths[txid if txid is not None else txids[-1]][table]:
                wrong += 1
        return queries, errors, wrong

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(run, range(seed, seed + threads)))
    time.sleep(DEFAULT_POLL_SECONDS * 2.5)  # the poller thread exits once nobody follows latest
    return {
        "queries": sum(r[0] for r in results),
        "errors": sum(r[1] for r in results),
        "wrong": sum(r[2] for r in results),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "extra_threads": threading.active_count() - baseline_threads - _pool_threads(),
        "pool_threads": _pool_threads(),
        "workers": IO_WORKERS + TASK_WORKERS + PREFETCH_WORKERS,
        "extra_fds": _open_fds() - baseline_fds,
    }


def test_soak(replica_factory, seaweedfs):
    s3_replica = replica_factory.get("0.5.17", "s3", seaweedfs)
    truths = {txid: {t: rows for t, rows in ground_truth(s3_replica.restore(txid)).items() if t in TABLES}
              for txid in s3_replica.litestream_txids()}
    context = multiprocessing.get_context("spawn")
    with Proxy(seaweedfs.endpoint_url, latency=0.005) as proxy:
        url = through(proxy, s3_replica.url)
        with context.Pool(PROCESSES) as pool:
            reports = pool.starmap(_worker, [(url, s3_replica.env, truths, 1000 * i, SECONDS, THREADS)
                                             for i in range(PROCESSES)])
        kinds = proxy.counts()
    for report in reports:
        print(f"\nsoak worker: {report}")
    print(f"soak requests: {dict(kinds)}")
    assert all(r["queries"] > 0 for r in reports)
    assert sum(r["wrong"] for r in reports) == 0
    assert sum(r["errors"] for r in reports) == 0
    for report in reports:
        assert report["extra_threads"] <= 0, "threads other than the fetch pool outlived the connections"
        assert report["pool_threads"] <= report["workers"]
        # boto3 keeps up to max_pool_connections (32) keep-alive sockets per replica.
        assert report["extra_fds"] <= 32, "descriptors leak with connections"
