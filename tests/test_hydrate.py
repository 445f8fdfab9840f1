"""Hydration (litestream_vfs.hydrate) against replicas written by real Litestream.

Every read is compared with `litestream restore` of the TXID it was pinned to;
restarts and kills run the hydrating connection in a child process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import apsw
import pytest

import litestream_vfs
from litestream_vfs import ltx
from litestream_vfs.connect import open_replica, replica_uri
from litestream_vfs.filemeta import WHOLE_FILE_LIMIT, guess_tail_length
from litestream_vfs.hydrate import Hydrator, hydration_path, hydrator_for
from litestream_vfs.hydrate_local import Meta
from litestream_vfs.plan import build_chains
from litestream_vfs.storage.file import FileStorage
from litestream_vfs.vfs import file_of

from support.binaries import litestream_binary
from support.replicas import child_env, replicate_config, run_restore
from support.seaweed import stop_process_group
from support.workload import open_writer, prepare_database
from support.truth import ground_truth, table_contents

FLAGS = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
WAIT_SECONDS = 60.0


def hydrated(url: str, path: Path) -> apsw.Connection:
    return apsw.Connection(f"{replica_uri(url)}&hydrate={quote(str(path), safe='')}", flags=FLAGS)


def status(connection: apsw.Connection) -> str:
    return connection.execute("PRAGMA litestream_hydration").fetchall()[0][0]


def wait_ready(connection: apsw.Connection, txid: int | None = None) -> int:
    """Wait until the copy is ready (at `txid` if given); return the TXID it holds."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        now = status(connection)
        assert not now.startswith("error"), now
        if now.startswith("ready ") and (txid is None or int(now.split()[1], 16) == txid):
            return int(now.split()[1], 16)
        assert time.monotonic() < deadline, f"hydration still {now!r}"
        time.sleep(0.02)



def pinned_read(connection: apsw.Connection) -> tuple[int, dict[str, list]]:
    """(TXID, every table) read inside one transaction, so both describe the same state."""
    connection.execute("BEGIN")
    try:
        rows = table_contents(connection)
        txid = int(connection.execute("PRAGMA litestream_txid").fetchall()[0][0], 16)
    finally:
        connection.execute("COMMIT")
    return txid, rows


def as_rollback(db: bytes) -> bytes:
    """A restored database with page 1 bytes 18/19 = 1, as the hydrated copy stores it."""
    return db[:18] + b"\x01\x01" + db[20:]


def restored(binary: Path, url: str, txid: int, workdir: Path) -> Path:
    out = workdir / f"restore-{txid:016x}.db"
    if not out.exists():
        run_restore(binary, url, out, {}, txid)
    return out



def trailer_checksum(replica_dir: str, record: dict) -> str:
    level, name = str(record["file"]).split("/")
    with open(os.path.join(replica_dir, "ltx", level[1:], name), "rb") as f:
        f.seek(-8, os.SEEK_END)
        return f.read().hex()


# -- pure logic ------------------------------------------------------------------
def test_hydration_path_from_uri_or_directory(tmp_path):
    assert hydration_path("s3://b/x.db", "off", str(tmp_path)) is None
    assert hydration_path("s3://b/x.db", None, None) is None
    assert hydration_path("s3://b/x.db", "rel.db", None) == os.path.abspath("rel.db")
    one, two = (hydration_path(u, None, str(tmp_path)) for u in ("s3://b/x.db", "s3://c/x.db"))
    assert one and two and one != two and Path(one).parent == tmp_path and Path(one).name.startswith("x.db.")


# -- a stable replica ------------------------------------------------------------
def test_copy_equals_restore_and_serves_the_latest_state_locally(file_replica, tmp_path):
    path = tmp_path / "copy.db"
    connection = hydrated(file_replica.url, path)
    first_txid, first_rows = pinned_read(connection)  # through the remote path or the copy: exact either way
    assert first_rows == ground_truth(file_replica.restore(first_txid))
    txid = wait_ready(connection)
    assert txid == first_txid == file_replica.litestream_txids()[-1]
    assert path.read_bytes() == as_rollback(file_replica.restore(txid).read_bytes())

    meta = Meta.load(f"{path}.meta.json")
    state = open_replica(file_replica.url).state(txid)
    assert meta is not None and meta.pending is None
    assert (meta.replica, meta.txid, meta.page_size, meta.commit) == (open_replica(file_replica.url).storage.url,
                                                                      txid, state.page_size, state.commit)
    assert [r["file"] for r in meta.files] == [str(obj) for obj in state.plan]
    assert all(r["checksum"] == trailer_checksum(file_replica.url, r) for r in meta.files)

    file = file_of(connection)
    file.counters.reset()
    assert pinned_read(connection) == (txid, ground_truth(file_replica.restore(txid)))
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert file.counters.snapshot()["gets"] == 0  # every page came from the copy
    # Time travel keeps working through the remote path.
    earliest = file_replica.step_txids[0][1]
    connection.execute(f"PRAGMA litestream_txid='{earliest:016x}'")
    assert pinned_read(connection) == (earliest, ground_truth(file_replica.restore(earliest)))
    remote = file.counters.snapshot()  # the shared page cache may already hold these pages
    assert remote["cache_hits"] + remote["cache_misses"] > 0
    # A plain connection reports hydration off; the copy opens with plain SQLite too.
    plain = apsw.Connection(replica_uri(file_replica.url), flags=FLAGS)
    assert status(plain) == "off"
    direct = apsw.Connection(f"file:{path}?mode=ro", flags=FLAGS)
    assert table_contents(direct) == ground_truth(file_replica.restore(txid))
    for db in (direct, plain, connection):
        db.close()


def _corrupt_truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 4096)


def _corrupt_foreign_url(path: Path) -> None:
    meta = json.loads(Path(f"{path}.meta.json").read_text())
    Path(f"{path}.meta.json").write_text(json.dumps({**meta, "replica": "s3://elsewhere/other.db"}))


def _corrupt_missing_meta(path: Path) -> None:
    os.unlink(f"{path}.meta.json")


def _corrupt_pending(path: Path) -> None:
    meta = json.loads(Path(f"{path}.meta.json").read_text())
    Path(f"{path}.meta.json").write_text(json.dumps({**meta, "pending": meta["txid"]}))


def _corrupt_checksum(path: Path) -> None:
    meta = json.loads(Path(f"{path}.meta.json").read_text())
    meta["files"][-1]["checksum"] = f"{int(meta['files'][-1]['checksum'], 16) ^ 1:016x}"
    Path(f"{path}.meta.json").write_text(json.dumps(meta))


def _corrupt_header(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(18)
        f.write(b"\x02\x02")


def _corrupt_btree(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(4096 * 2)  # page 3: a b-tree page of Chinook; its type byte becomes nonsense
        f.write(b"\x07")


@pytest.mark.parametrize("corrupt", [None, _corrupt_truncate, _corrupt_foreign_url, _corrupt_missing_meta,
                                     _corrupt_pending, _corrupt_checksum, _corrupt_header, _corrupt_btree],
                         ids=lambda c: "intact" if c is None else c.__name__[9:])
def test_restart_trusts_only_an_intact_copy(file_replica, tmp_path, corrupt):
    path = tmp_path / "copy.db"
    connection = hydrated(file_replica.url, path)
    txid = wait_ready(connection)
    connection.close()  # the last user: the hydrator stops and lets go of the lock
    before = path.stat().st_ino
    if corrupt is not None:
        corrupt(path)
    connection = hydrated(file_replica.url, path)
    if corrupt is None:  # the open waits for the check, so the very first read is local
        assert status(connection) == f"ready {txid:016x}"
    assert wait_ready(connection) == txid
    assert (path.stat().st_ino == before) == (corrupt is None)  # rebuilt means a new file renamed in
    assert path.read_bytes() == as_rollback(file_replica.restore(txid).read_bytes())
    assert not Path(f"{path}.partial").exists()
    connection.close()


def test_one_owner_builds_a_follower_reads_and_takes_over(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    path = str(tmp_path / "shared.db")
    owner = hydrator_for(replica, path, 0.05)
    follower = Hydrator(replica, path, 0.05)  # stands in for a second process: its own lock attempt
    follower.start()
    state = replica.latest()
    deadline = time.monotonic() + WAIT_SECONDS
    while follower.txid != state.txid or owner.txid != state.txid:
        assert time.monotonic() < deadline, (owner.describe(), follower.describe())
        time.sleep(0.02)
    # Both started at once: whichever took the lock built the copy; the other only read it.
    builder, reader = (owner, follower) if owner.owns else (follower, owner)
    assert not reader.owns
    expected = as_rollback(file_replica.restore(state.txid).read_bytes())
    assert reader.copy.pages(state, 1, state.commit) == expected
    assert reader.counters.snapshot()["gets"] == 0
    builder.release()
    builder.join()
    deadline = time.monotonic() + WAIT_SECONDS
    while not (reader.owns and reader.txid == state.txid):  # the lock is free: it becomes the owner
        assert time.monotonic() < deadline, reader.describe()
        time.sleep(0.02)
    assert reader.copy.pages(state, 1, state.commit) == expected
    assert reader.counters.snapshot()["gets"] == 0  # it trusted the copy: nothing fetched again
    reader.release()
    reader.join()


# -- live replication --------------------------------------------------------------
class Replicating:
    """`litestream replicate` (0.5.17) of `db` into `replica_dir` while the test runs."""

    def __init__(self, db: Path, replica_dir: Path) -> None:
        self.replica_dir = replica_dir
        config = db.parent / "litestream.yml"
        config.write_text(replicate_config(db, f"file://{replica_dir}"))
        self.log = open(db.parent / "replicate.log", "wb")
        self.proc = subprocess.Popen([str(litestream_binary("0.5.17")), "replicate", "-config", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=child_env({}), start_new_session=True)

    def l0_ends(self) -> list[int]:
        return [int(p.name[17:33], 16) for p in (self.replica_dir / "ltx" / "0").glob("*.ltx")]

    def newest(self) -> int:
        return max(self.l0_ends(), default=0)

    def wait_past(self, txid: int) -> int:
        """Wait for an L0 file beyond `txid`, then for Litestream to go quiet; return the newest TXID."""
        deadline = time.monotonic() + WAIT_SECONDS
        while self.newest() <= txid:
            assert self.proc.poll() is None and time.monotonic() < deadline, "litestream shipped nothing"
            time.sleep(0.05)
        newest = self.newest()
        while True:
            time.sleep(0.4)
            if self.newest() == newest:
                return newest
            newest = self.newest()

    def stop(self) -> None:
        stop_process_group(self.proc)
        self.log.close()


def test_live_reads_equal_restore_before_during_and_after_hydration(tmp_path):
    db, replica_dir = tmp_path / "live.db", tmp_path / "replica"
    prepare_database(db)
    live = Replicating(db, replica_dir)
    binary, url = litestream_binary("0.5.17"), f"file://{replica_dir}"
    try:
        shipped = live.wait_past(0)
        connection = hydrated(str(replica_dir), tmp_path / "copy.db")
        hydrator = file_of(connection).hydrator
        reads = [(status(connection), *pinned_read(connection))]  # the very first query
        ready_at = wait_ready(connection)
        reads.append((status(connection), *pinned_read(connection)))
        writer = open_writer(db)
        for step in range(4):
            writer.execute("INSERT INTO Genre(Name) VALUES (?)", (f"live genre {step}",))
            writer.execute("UPDATE Track SET Milliseconds = Milliseconds + 1 WHERE TrackId % 7 = ?", (step,))
            previous, shipped = shipped, live.wait_past(shipped)
            gets_before = hydrator.counters.snapshot()["gets"]
            wait_ready(connection, shipped)  # polled, applied in place
            new_files = [t for t in live.l0_ends() if previous < t <= shipped]
            assert hydrator.counters.snapshot()["gets"] - gets_before <= len(new_files)  # only the new files
            reads.append((status(connection), *pinned_read(connection)))
        writer.close()
        for seen, txid, rows in reads:
            assert rows == ground_truth(restored(binary, url, txid, tmp_path)), f"{seen}: TXID {txid:016x}"
        assert [txid for _, txid, _ in reads[1:]] == sorted({txid for _, txid, _ in reads[1:]})
        assert reads[-1][1] == shipped > ready_at
        assert all(seen == f"ready {txid:016x}" for seen, txid, _ in reads[1:])  # served from the copy
        copy = (tmp_path / "copy.db").read_bytes()
        assert copy == as_rollback(restored(binary, url, shipped, tmp_path).read_bytes())
        connection.close()
    finally:
        live.stop()


# -- a killed build, then restarts in fresh processes ----------------------------------
CHILD = r"""
import json, sys, time
import apsw, litestream_vfs
from litestream_vfs import hydrate_copy
from litestream_vfs.vfs import file_of
from urllib.parse import quote

url, path, mode = sys.argv[1:4]
if mode == "slow":  # test-only: stretch the build so the parent can kill it midway
    real = hydrate_copy.verified_pages
    def slow(*args):
        for item in real(*args):
            time.sleep(0.003)
            yield item
    hydrate_copy.verified_pages = slow
db = apsw.Connection(f"file:big.db?vfs=litestream&replica={quote(url, safe='')}&hydrate={quote(path, safe='')}",
                     flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
opened = litestream_vfs.stats()
first = db.execute("PRAGMA litestream_hydration").fetchall()[0][0]
while True:
    now = db.execute("PRAGMA litestream_hydration").fetchall()[0][0]
    print(json.dumps({"status": now}), flush=True)
    if now.startswith("ready") or now.startswith("error"):
        break
    time.sleep(0.02)
file = file_of(db)
file.counters.reset()
count = db.execute("SELECT count(*), sum(length(payload)) FROM big").fetchall()[0]
print(json.dumps({"status": now, "first": first, "hydrator": file.hydrator.counters.snapshot(), "opened": opened,
                  "scan": file.counters.snapshot(), "count": count}), flush=True)
"""


def _big_replica(tmp_path: Path) -> tuple[Path, int]:
    """A ~12 MB database (incompressible rows) replicated by real Litestream, then left stable."""
    db, replica_dir = tmp_path / "big.db", tmp_path / "replica"
    prepare_database(db)
    writer = open_writer(db)
    rng = random.Random(9)
    writer.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, payload BLOB)")
    with writer:
        for i in range(3000):
            writer.execute("INSERT INTO big(payload) VALUES (?)", (rng.randbytes(3500),))
    writer.close()
    live = Replicating(db, replica_dir)
    try:
        txid = live.wait_past(0)
    finally:
        live.stop()
    return replica_dir, txid


def _child(url: str, path: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, url, str(path), mode], stdout=subprocess.PIPE,
                            text=True, cwd=path.parent)


def test_killed_build_leaves_only_a_partial_and_restarts_fetch_nothing_held(tmp_path):
    replica_dir, txid = _big_replica(tmp_path)
    path = tmp_path / "copy.db"
    slow = _child(str(replica_dir), path, "slow")
    try:
        for line in slow.stdout:
            now = json.loads(line)["status"]
            assert not now.startswith(("ready", "error")), now
            if now.startswith("building") and int(now.split()[1].rstrip("%")) >= 10:
                break
        assert Path(f"{path}.partial").exists()
        slow.send_signal(signal.SIGKILL)
    finally:
        slow.kill()
        slow.wait()
    assert not path.exists() and not Path(f"{path}.meta.json").exists()  # nothing half-built is in use

    results = []
    for _ in range(2):  # rebuild after the kill, then a restart with a complete copy
        child = _child(str(replica_dir), path, "normal")
        out, _ = child.communicate(timeout=WAIT_SECONDS)
        assert child.returncode == 0
        results.append(json.loads(out.splitlines()[-1]))
    rebuilt, restarted = results
    for result in results:
        assert result["status"] == f"ready {txid:016x}"
        assert result["scan"]["gets"] == 0  # a full scan served from the copy
        assert result["count"][0] == 3000
    assert not Path(f"{path}.partial").exists()
    assert rebuilt["hydrator"]["gets"] > 0
    assert restarted["hydrator"]["gets"] == 0 and restarted["hydrator"]["bytes_fetched"] == 0
    # Issue 14, item 8: the reopen reads each planned (large) file's header and index, not the
    # 64 KiB of frames after its header that an open without a local copy reads along.
    files = FileStorage(str(replica_dir)).list_files()
    chains = build_chains(files)
    plan, dating = chains.plan(txid), chains.finest(txid)
    headers_only = [] if dating in plan else [dating]  # the file that dates the state: its header
    assert all(o.size > WHOLE_FILE_LIMIT for o in (*plan, *headers_only))
    index_bytes = sum(ltx.HEADER_SIZE + guess_tail_length(o.size) for o in plan) + ltx.HEADER_SIZE * len(headers_only)
    assert restarted["opened"]["gets"] == 2 * len(plan) + len(headers_only), restarted["opened"]
    assert restarted["opened"]["bytes_fetched"] <= index_bytes < sum(o.size for o in plan)
    assert restarted["first"] == restarted["status"]  # the open waited for the check: no read went remote
    truth_path = restored(litestream_binary("0.5.17"), f"file://{replica_dir}", txid, tmp_path)
    assert path.read_bytes() == as_rollback(truth_path.read_bytes())
    print("hydration counts:", json.dumps({"rebuild": rebuilt, "restart": restarted}))


def test_register_hydrate_dir_applies_to_every_connection_unless_off(file_replica, tmp_path):
    litestream_vfs.register(hydrate_dir=str(tmp_path))
    try:
        connection = apsw.Connection(replica_uri(file_replica.url), flags=FLAGS)
        opted_out = apsw.Connection(f"{replica_uri(file_replica.url)}&hydrate=off", flags=FLAGS)
    finally:
        litestream_vfs.register(hydrate_dir="")
    txid = wait_ready(connection)
    assert status(opted_out) == "off"
    expected = hydration_path(open_replica(file_replica.url).storage.url, None, str(tmp_path))
    assert expected is not None and Path(expected).read_bytes() == as_rollback(
        file_replica.restore(txid).read_bytes())
    connection.close()
    opted_out.close()
