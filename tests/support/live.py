"""A running `litestream replicate` for tests that watch a replica change under them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .binaries import litestream_binary
from .replicas import LEVEL_INTERVALS, child_env, replicate_config
from .seaweed import stop_process_group
from .workload import prepare_database


@dataclass(frozen=True)
class LiveReplica:
    db_path: Path
    replica_dir: Path
    binary: Path

    @property
    def litestream_url(self) -> str:
        return f"file://{self.replica_dir}"


@contextmanager
def live_replication(workdir: Path, version: str = "0.5.17",
                     settings: Mapping[str, str] = MappingProxyType({}),
                     level_intervals: Sequence[str] = LEVEL_INTERVALS) -> Iterator[LiveReplica]:
    """Replicate a WAL-mode Chinook copy to `workdir/replica` until the block exits."""
    db_path, replica_dir = workdir / "live.db", workdir / "replica"
    prepare_database(db_path)
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, f"file://{replica_dir}", settings, level_intervals))
    binary = litestream_binary(version)
    with open(workdir / "replicate.log", "wb") as log:
        proc = subprocess.Popen([str(binary), "replicate", "-config", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env({}),
                                start_new_session=True)
        try:
            yield LiveReplica(db_path, replica_dir, binary)
        finally:
            stop_process_group(proc)
