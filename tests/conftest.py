"""Session fixtures backed by real components: Litestream binaries, SeaweedFS, replicas.

Everything is built lazily: a test that needs only `file_replica` never starts
SeaweedFS, and the four parametrized replicas are generated concurrently the
first time any of them is needed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.binaries import litestream_binary
from support.fleet import FleetReplica, build_fleet
from support.incidents import IncidentReplica, build_incident_replica
from support.replicas import REPLICA_KINDS, ReplicaFactory, ReplicaFixture
from support.seaweed import SeaweedFS, running_seaweedfs
from support.webdav import WebDAVReplica, WebDAVServer, replicate_through_webdav, running_webdav
from support.workload import STEPS


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A running SeaweedFS S3 server with an empty bucket (`.bucket`)."""
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def litestream_bin() -> Callable[[str], Path]:
    """Factory: version string -> path of that `litestream` binary."""
    return litestream_binary


@pytest.fixture(scope="session")
def replica_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaFactory]:
    factory = ReplicaFactory(tmp_path_factory.mktemp("replicas"))
    yield factory
    factory.close()


@pytest.fixture(scope="session", params=REPLICA_KINDS,
                ids=[f"v{version}-{backend}" for version, backend in REPLICA_KINDS])
def replica(request: pytest.FixtureRequest, replica_factory: ReplicaFactory) -> ReplicaFixture:
    """A stable replica written by real Litestream, per (version, backend)."""
    version, backend = request.param
    server = request.getfixturevalue("seaweedfs")
    return replica_factory.get(version, backend, server, together_with=REPLICA_KINDS)


@pytest.fixture
def replica_env(replica: ReplicaFixture, monkeypatch: pytest.MonkeyPatch) -> ReplicaFixture:
    """`replica`, with the environment its URL needs (S3 credentials) set for the test."""
    for key, value in replica.env.items():
        monkeypatch.setenv(key, value)
    return replica


@pytest.fixture(scope="session")
def file_replica(replica_factory: ReplicaFactory) -> ReplicaFixture:
    """The Litestream 0.5.17 replica in a local directory (no S3 server needed)."""
    return replica_factory.get("0.5.17", "file")


#: Tenants in the `fleet_replicas` fixture (the issue asks for at least 50).
FLEET_SIZE = 52


@pytest.fixture
def replica_copy(file_replica: ReplicaFixture, tmp_path: Path) -> Path:
    """A private copy of the stable file replica: tests delete, hide or damage its files."""
    root = tmp_path / "replica"
    shutil.copytree(file_replica.url, root, ignore=shutil.ignore_patterns("*.tmp"))
    return root


@pytest.fixture(scope="session")
def fleet_replicas(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedFS) -> dict[str, FleetReplica]:
    """FLEET_SIZE tenants replicated by real Litestream directory replication: backend ("file", "s3") -> fleet."""
    return build_fleet(tmp_path_factory.mktemp("fleet"), FLEET_SIZE, seaweedfs)


@pytest.fixture(scope="session")
def ray_cluster(seaweedfs: SeaweedFS) -> Iterator[None]:
    """One local Ray cluster for the session (its start-up is slow); its workers get the S3
    credentials through Ray's runtime_env, as a user would give them to a real cluster."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": seaweedfs.credentials_env()})
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def dask_client(seaweedfs: SeaweedFS) -> Iterator[object]:
    """A local Dask cluster (two worker processes) whose client is the default; workers get the
    S3 credentials in their environment."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=seaweedfs.credentials_env()) as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def incident_replica(tmp_path_factory: pytest.TempPathFactory) -> IncidentReplica:
    """Known rows updated, deleted and re-inserted around a VACUUM (support/incidents.py)."""
    return build_incident_replica(tmp_path_factory.mktemp("incidents"))


@pytest.fixture(scope="session")
def webdav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDAVServer]:
    """A running WsgiDAV server (Basic auth) on an empty directory."""
    with running_webdav(tmp_path_factory.mktemp("dav")) as server:
        yield server


@pytest.fixture(scope="session")
def webdav_replica(webdav_server: WebDAVServer, tmp_path_factory: pytest.TempPathFactory) -> WebDAVReplica:
    """Litestream 0.5.17 replicating a few workload transactions through `webdav_server`."""
    return replicate_through_webdav(webdav_server, "replicas/chinook.db", tmp_path_factory.mktemp("work"),
                                    STEPS[:5], litestream_binary("0.5.17"))


@pytest.fixture
def fast_polling() -> Iterator[float]:
    """Followers poll every 0.2 s during the test (the interval is yielded), then every second again."""
    import litestream_vfs

    litestream_vfs.register(poll_interval=0.2)
    yield 0.2
    litestream_vfs.register(poll_interval=1.0)
