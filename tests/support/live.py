"""A running `litestream replicate` for tests that watch a replica change under them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .binaries import litestream_binary
from .replicas import HOURLY_SNAPSHOTS, LEVEL_INTERVALS, ReplicaLocation, Snapshots, child_env, replicate_config
from .seaweed import SeaweedFS, stop_process_group
from .workload import prepare_database


@dataclass(frozen=True)
class LiveReplica:
    db_path: Path
    location: ReplicaLocation
    binary: Path
    #: Environment needed to read the replica (S3 credentials; empty for a directory).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def replica_dir(self) -> Path:
        """The replica's directory (directory replicas only)."""
        assert self.location.server is None, "an S3 replica has no directory"
        return Path(self.location.root)

    @property
    def url(self) -> str:
        """The replica as our package takes it: a directory path or an s3:// URL."""
        server = self.location.server
        return self.location.root if server is None else server.s3_url(self.location.root)

    @property
    def litestream_url(self) -> str:
        return f"file://{self.url}" if self.location.server is None else self.url


@contextmanager
def live_replication(workdir: Path, version: str = "0.5.17",
                     settings: Mapping[str, str] = MappingProxyType({}),
                     level_intervals: Sequence[str] = LEVEL_INTERVALS,
                     server: SeaweedFS | None = None,
                     snapshots: Snapshots = HOURLY_SNAPSHOTS) -> Iterator[LiveReplica]:
    """Replicate a WAL-mode Chinook copy to `workdir/replica` (or to S3 on `server`) until the block exits."""
    db_path = workdir / "live.db"
    prepare_database(db_path)
    if server is None:
        location, env = ReplicaLocation("file", str(workdir / "replica")), {}
    else:
        location, env = ReplicaLocation("s3", f"{workdir.name}/live.db", server), server.credentials_env()
    live = LiveReplica(db_path, location, litestream_binary(version), env)
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, live.litestream_url, settings, level_intervals, snapshots))
    with open(workdir / "replicate.log", "wb") as log:
        proc = subprocess.Popen([str(live.binary), "replicate", "-config", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env(env),
                                start_new_session=True)
        try:
            yield live
        finally:
            stop_process_group(proc)
