"""Spread a fleet query over the workers of a Ray or Dask cluster.

The driver lists the directory once and cuts the database list into
contiguous shares, a few per worker; each share is one ordinary task of the
engine (a Ray remote function, a Dask future) that runs the local engine on
it and returns an Arrow table; the tables are merged in order, so the result
equals the local engine's. Scheduling, retries and placement are the
engine's own.

Which cluster: Ray's `ray.init()` rules (an initialized Ray; else
RAY_ADDRESS; else a new local Ray that stays up for later calls, as Ray's own
libraries do). Dask's: the current default `distributed.Client`; else
`Client()`, which follows dask's config (`scheduler-address`, e.g.
DASK_SCHEDULER_ADDRESS) or starts a local cluster, closed again afterwards.

What reaches the workers: the share (database paths and their files from
the listing), the query and the state to read, and this process's
`register()` settings (cache sizes, cache_dir, ...). Credentials are never
shipped: each worker reads them from its own environment when it opens the
store (boto3's chain for s3://, LITESTREAM_* variables, ...). Workers of a
local cluster inherit this process's environment; for an existing cluster,
give its workers the variables (Ray: `ray.init(runtime_env={"env_vars": {...}})`;
Dask: the workers' environment, or `distributed.Client.run` setting
os.environ) or an instance role.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .errors import ReplicaError
from .fleet_local import Part, PartResult, Tick, run_part
from .process import PROCESS, Settings

#: Shares per worker slot: enough to even out slow shares, few enough to keep per-task costs small.
SHARES_PER_SLOT = 2


def split(part: Part, shares: int) -> list[Part]:
    """`part` cut into at most `shares` contiguous, near-equal shares, in order."""
    count = len(part.databases)
    shares = max(1, min(shares, count))
    bounds = [count * i // shares for i in range(shares + 1)]
    return [replace(part, databases=part.databases[lo:hi]) for lo, hi in zip(bounds, bounds[1:])]


def run_share(share: Part, settings: Settings) -> PartResult:
    """On a worker: this process's settings as the driver's, then the local engine on one share."""
    PROCESS.configure(replicas=settings.replicas, cache_bytes=settings.cache_bytes,
                      poll_seconds=settings.poll_seconds, cache_dir=settings.cache_dir or "",
                      disk_bytes=settings.disk_bytes, hydrate_dir=settings.hydrate_dir or "")
    return run_part(share)


def run_on_cluster(engine: str, part: Part, tick: Tick | None = None) -> list[PartResult]:
    """Run `part` over the workers of `engine` ("ray" or "dask"): the shares' results, in order."""
    runner: Callable[[Part, Settings, Callable[[Part], None]], list[PartResult]] = {
        "ray": _run_ray, "dask": _run_dask}[engine]

    def finished(share: Part) -> None:
        if tick is not None:
            for _ in share.databases:
                tick()

    return runner(part, PROCESS.settings, finished)


def _require(module: str, extra: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ReplicaError(f"engine={extra!r} needs {module}: pip install 'litestream-apsw[{extra}]'") from exc


def _run_ray(part: Part, settings: Settings, finished: Callable[[Part], None]) -> list[PartResult]:
    _require("ray", "ray")
    import ray

    if not ray.is_initialized():
        ray.init(logging_level="WARNING")
    slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
    shares = split(part, slots * SHARES_PER_SLOT)
    task = ray.remote(run_share)
    refs = [task.remote(share, settings) for share in shares]
    order = {ref: index for index, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            index = order[ref]
            results[index] = ray.get(ref)
            finished(shares[index])
    return results


def _run_dask(part: Part, settings: Settings, finished: Callable[[Part], None]) -> list[PartResult]:
    _require("distributed", "dask")
    from distributed import Client, as_completed, default_client

    try:
        client, own = default_client(), False
    except ValueError:  # no client yet: dask's config decides (scheduler-address, else a local cluster)
        client, own = Client(), True
    try:
        slots = max(1, sum(worker.get("nthreads", 1) for worker in client.scheduler_info()["workers"].values()))
        shares = split(part, slots * SHARES_PER_SLOT)
        futures = client.map(run_share, shares, settings=settings, pure=False)
        order = {future.key: index for index, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for future in as_completed(futures):
            index = order[future.key]
            results[index] = future.result()
            finished(shares[index])
        return results
    finally:
        if own:
            client.close()
