"""A real replica whose latest plan holds many large level-0 files (a busy writer between compactions).

Litestream replicates Chinook while `count` transactions each insert about
300 KB of incompressible rows, so every step ships as its own L0 file larger
than the size we fetch whole. The level-0 files (and nothing compacted) are
then copied aside: in that copy the plan of the newest state is the initial
snapshot plus every step's file, as it is in a replica between compactions.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import apsw

from .binaries import litestream_binary
from .replicas import ReplicaLocation, replicate_config, replicate_steps
from .workload import Step, prepare_database

ROWS_PER_STEP = 300
ROW_BYTES = 1000


@dataclass(frozen=True)
class ManyFiles:
    url: str  # a plain directory holding only level-0 files
    binary: Path
    txids: tuple[int, ...]  # the TXID of each step, oldest first

    @property
    def litestream_url(self) -> str:
        return f"file://{self.url}"


def _insert(step: int) -> Step:
    def apply(conn: apsw.Connection) -> None:
        rng = random.Random(step)
        with conn:
            conn.executemany("INSERT INTO wide(step, payload) VALUES (?, ?)",
                             ((step, rng.randbytes(ROW_BYTES)) for _ in range(ROWS_PER_STEP)))
    return Step(f"wide {step}", apply)


def _create(conn: apsw.Connection) -> None:
    with conn:
        conn.execute("CREATE TABLE wide(id INTEGER PRIMARY KEY, step INTEGER, payload BLOB)")


def replicate(workdir: Path, replica_dir: Path, steps: tuple[Step, ...],
              version: str = "0.5.17") -> tuple[tuple[str, int], ...]:
    """Replicate a fresh Chinook copy in `workdir` to `replica_dir` while `steps` commit, one
    L0 file each, then stop Litestream; (step name, TXID) pairs."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "source.db"
    prepare_database(db_path)
    config = workdir / "litestream.yml"
    config.write_text(replicate_config(db_path, f"file://{replica_dir}"))
    location = ReplicaLocation("file", str(replica_dir))
    return replicate_steps(litestream_binary(version), config, {}, location.newest_txid, db_path, steps,
                           str(replica_dir), compacted_levels=())


def build_many_large_l0(workdir: Path, count: int, version: str = "0.5.17") -> ManyFiles:
    replica_dir = workdir / "replica"
    landed = replicate(workdir, replica_dir, (Step("create wide", _create), *(_insert(i) for i in range(count))),
                       version)
    level0 = workdir / "level0"
    shutil.copytree(replica_dir / "ltx" / "0", level0 / "ltx" / "0", ignore=shutil.ignore_patterns("*.tmp"))
    return ManyFiles(str(level0), litestream_binary(version), tuple(txid for _, txid in landed))


def _seeded_rows(seed: int, first: int) -> Step:
    def apply(conn: apsw.Connection) -> None:
        rng = random.Random(seed * 1000 + first)
        with conn:
            conn.executemany("INSERT INTO wide(step, payload) VALUES (?, ?)",
                             ((first, rng.randbytes(ROW_BYTES)) for _ in range(ROWS_PER_STEP // 10)))
    return Step(f"seeded {first}", apply)


def build_seeded(workdir: Path, replica_dir: Path, seed: int, steps: int = 3,
                 version: str = "0.5.17") -> tuple[tuple[str, int], ...]:
    """Replicate Chinook plus `steps` transactions of incompressible rows drawn from `seed` to
    `replica_dir`: two seeds give replicas with the same file names and sizes, other bytes.
    The source database is `workdir`/source.db."""
    return replicate(workdir, replica_dir, (Step("create wide", _create),
                                            *(_seeded_rows(seed, i) for i in range(steps))), version)


def build_big_table(workdir: Path, rows: int = 6000, version: str = "0.5.17") -> Path:
    """A replica (returned: its directory) of Chinook plus one transaction writing `rows`
    incompressible 1000-byte rows in table `wide`: a large file scans read by ranges."""
    def fill(conn: apsw.Connection) -> None:
        rng = random.Random(7)
        with conn:
            conn.executemany("INSERT INTO wide(step, payload) VALUES (?, ?)",
                             ((i, rng.randbytes(ROW_BYTES)) for i in range(rows)))

    replica_dir = workdir / "replica"
    replicate(workdir, replica_dir, (Step("create wide", _create), Step("fill wide", fill)), version)
    return replica_dir
