"""`verify=auto|full|ranges` with real Litestream files (LZ4 frames from 0.5.15, blocks from 0.5.17).

One byte of a page body is altered so that the page still decodes, to other
bytes (support/corrupt.py): only the whole-file checksum can see it. Each
replica view holds the altered file as the only route to its state, so a read
that does not fail would serve the altered page. No test here accepts rows
from an altered file: a read either fails naming the file, or (under `auto`,
above the whole-fetch limit) its result is ignored until the background pass
has poisoned the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import apsw
import pytest

from litestream_vfs import filemeta, restore as restore_module
from litestream_vfs.cli import main as cli_main
from litestream_vfs.connect import connect, open_replica
from litestream_vfs.errors import LitestreamVFSError, ReplicaError
from litestream_vfs.plan import build_chains
from litestream_vfs.process import PROCESS
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.verify import parse_mode
from litestream_vfs.vfs import file_of
from support.corrupt import flip_page_body
from support.replicas import ReplicaFixture
from support.truth import ground_truth, table_contents

CLEAN_ERRORS = (apsw.Error, LitestreamVFSError)
VERSIONS = ("0.5.15", "0.5.17")
KINDS = ("L0", "L1", "snapshot")


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def source(request, replica_factory) -> ReplicaFixture:
    return replica_factory.get(request.param, "file")


def pick(files: list[LtxObject], kind: str) -> LtxObject:
    """A file of that kind below the whole-fetch limit (L0/L1: not a snapshot, not tiny)."""
    limit = filemeta.WHOLE_FILE_LIMIT
    if kind == "snapshot":
        return next(o for o in files if o.level == 9)
    level = int(kind[1])
    return next(o for o in files if o.level == level and o.min_txid > 1 and 50_000 < o.size < limit)


def sole_route_view(source: ReplicaFixture, dest: Path, target: LtxObject) -> Path:
    """`target` plus the cheapest chain of files up to the state before it: nothing else
    rebuilds state `target.max_txid`, so its pages must come from `target`."""
    files = source.ltx_files()
    before = build_chains(o for o in files if o.max_txid < target.min_txid)
    keep = [target, *(before.plan(target.min_txid - 1) if target.min_txid > 1 else ())]
    for obj in keep:
        path = dest / "ltx" / str(obj.level) / obj.name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(source.url) / "ltx" / str(obj.level) / obj.name, path)
    return dest


def corrupt_view(source: ReplicaFixture, tmp_path: Path, kind: str) -> tuple[Path, LtxObject]:
    target = pick(source.ltx_files(), kind)
    root = sole_route_view(source, tmp_path / "replica", target)
    flip_page_body(root / "ltx" / str(target.level) / target.name)
    return root, target


def read_everything(db: apsw.Connection) -> None:
    """Every page of the state through the VFS, then every table (results are not looked at)."""
    file = file_of(db)
    for pgno in range(1, file.state.commit + 1):
        file.xRead(file.state.page_size, (pgno - 1) * file.state.page_size)
    table_contents(db)


def stats(db: apsw.Connection, scope: str = "connection") -> dict[str, float]:
    return {name: value for s, name, value in db.execute("SELECT * FROM litestream_stats") if s == scope}


def serving_files(db: apsw.Connection) -> set[LtxObject]:
    """The files that hold at least one page of the connection's state (the newest copy)."""
    file = file_of(db)
    return {loc.obj for loc in file.replica.page_map(file.state).values()}


@pytest.fixture
def stream_in_chunks(monkeypatch):
    """Large-file verification streams 64 KiB ranges (not one GET up to 8 MiB), as for big files."""
    monkeypatch.setattr(restore_module, "CHUNK_BYTES", 64 * 1024)


@pytest.mark.parametrize("kind", KINDS)
def test_auto_never_serves_a_corrupt_file_up_to_the_limit(source, tmp_path, kind):
    root, target = corrupt_view(source, tmp_path, kind)
    assert target.size <= filemeta.WHOLE_FILE_LIMIT
    with pytest.raises(CLEAN_ERRORS, match=target.name):
        db = connect(str(root), txid=f"{target.max_txid:016x}")
        read_everything(db)
    assert open_replica(str(root)).counters.files_poisoned == 1


@pytest.mark.parametrize("kind", KINDS)
def test_auto_poisons_a_corrupt_file_above_the_limit_in_the_background(source, tmp_path, monkeypatch,
                                                                       stream_in_chunks, kind):
    root, target = corrupt_view(source, tmp_path, kind)
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", target.size - 1)  # just above it
    db = None
    try:  # pages served by ranges before the background pass ends are not looked at
        db = connect(str(root), txid=f"{target.max_txid:016x}")
        read_everything(db)
    except CLEAN_ERRORS:
        pass  # the pass may already have poisoned it, or the altered page did not parse
    assert PROCESS.verifier.wait_idle(30)
    replica = open_replica(str(root))
    assert replica.damage.problem(target) is not None
    assert replica.counters.files_poisoned == 1
    if db is not None:
        for _ in range(2):  # the same connection, every later transaction
            with pytest.raises(CLEAN_ERRORS, match=target.name):
                db.execute("SELECT count(*) FROM sqlite_master").fetchall()
    with pytest.raises(CLEAN_ERRORS, match=target.name):  # a new one
        read_everything(connect(str(root), txid=f"{target.max_txid:016x}"))


@pytest.mark.parametrize("kind", KINDS)
def test_full_never_serves_any_corrupt_file(source, tmp_path, monkeypatch, stream_in_chunks, kind):
    root, target = corrupt_view(source, tmp_path, kind)
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", 0)  # every file read by ranges
    with pytest.raises(CLEAN_ERRORS, match=target.name):
        db = connect(str(root), txid=f"{target.max_txid:016x}", params={"verify": "full"})
        read_everything(db)
    counters = open_replica(str(root)).counters
    assert counters.files_poisoned == 1 and counters.bytes_served_unverified == 0


@pytest.mark.parametrize("kind", KINDS)
def test_validate_names_every_corrupt_file(source, tmp_path, capsys, kind):
    root, target = corrupt_view(source, tmp_path, kind)
    assert cli_main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {target}" in out and "checksum" in out


def test_full_verifies_every_file_once_and_remembers_it_in_cache_dir(file_replica, tmp_path, monkeypatch,
                                                                     stream_in_chunks):
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", 64 * 1024)
    root = tmp_path / "replica"
    shutil.copytree(file_replica.url, root)
    cache_dir = tmp_path / "cache"
    db = connect(str(root), params={"verify": "full", "cache_dir": str(cache_dir)})
    txid = int(db.execute("PRAGMA litestream_txid").fetchone()[0], 16)
    assert table_contents(db) == ground_truth(file_replica.restore(txid))
    first = stats(db)
    served = serving_files(db)
    replica = file_of(db).replica
    assert all(replica.verifier.is_verified(meta) for meta in replica.metas(sorted(served)))
    assert first["bytes_served_unverified"] == 0 and first["files_verified"] >= len(served)
    assert first["bytes_verified"] >= sum(o.size for o in served)

    # another process on the same cache directory verifies nothing again, and serves nothing unverified
    again = json.loads(subprocess.run([sys.executable, "-c", ANOTHER_PROCESS, str(root), str(cache_dir)],
                                      capture_output=True, text=True, check=True, timeout=120).stdout)
    assert again["files_verified"] == 0 and again["bytes_served_unverified"] == 0, again


#: A second process: the same limits as the test, verify=full, every table read; prints its stats.
ANOTHER_PROCESS = """
import json, sys
from litestream_vfs import filemeta, restore
filemeta.WHOLE_FILE_LIMIT, restore.CHUNK_BYTES = 64 * 1024, 64 * 1024
from litestream_vfs.connect import connect
db = connect(sys.argv[1], params={"verify": "full", "cache_dir": sys.argv[2]})
for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
    db.execute(f'SELECT * FROM "{name}"').fetchall()
print(json.dumps({n: v for s, n, v in db.execute("SELECT * FROM litestream_stats") if s == "connection"}))
"""


def test_auto_verifies_large_files_after_use_and_ranges_does_not(file_replica, tmp_path, monkeypatch):
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", 64 * 1024)
    for mode, verified_later in (("ranges", False), ("auto", True)):
        root = tmp_path / mode
        shutil.copytree(file_replica.url, root)
        db = connect(str(root), params={"verify": mode})
        txid = int(db.execute("PRAGMA litestream_txid").fetchone()[0], 16)
        assert table_contents(db) == ground_truth(file_replica.restore(txid))
        large = [o for o in serving_files(db) if o.size > 64 * 1024]
        assert large and stats(db)["bytes_served_unverified"] > 0
        assert PROCESS.verifier.wait_idle(30)
        replica = open_replica(str(root))
        verified = [replica.verifier.is_verified(m) for m in replica.metas(large)]
        assert verified == [verified_later] * len(large), mode
        assert replica.counters.files_poisoned == 0


def test_verify_mode_is_per_connection_and_checked(file_replica):
    assert parse_mode("FULL") == "full"
    with pytest.raises(ReplicaError, match="'sometimes'"):
        parse_mode("sometimes")
    with pytest.raises(CLEAN_ERRORS, match="sometimes"):
        connect(file_replica.url, params={"verify": "sometimes"})
    full = connect(file_replica.url, params={"verify": "full"})
    default = connect(file_replica.url)
    assert (file_of(full).verify, file_of(default).verify) == ("full", None)


@pytest.mark.parametrize("command", ["diff", "bisect", "query"])
def test_investigation_commands_never_use_a_corrupt_file(file_replica, tmp_path, capsys, command):
    """diff, bisect and query read through the same verified path (default verify=auto)."""
    root, target = corrupt_view(file_replica, tmp_path, "L0")
    before, after = f"{target.min_txid - 1:016x}", f"{target.max_txid:016x}"
    argv = {"diff": ["diff", str(root), "Track", "--from", before, "--to", after, "--format", "json"],
            "bisect": ["bisect", str(root), "SELECT sum(UnitPrice) FROM Track", "--from", before,
                       "--to", after, "--format", "json"],
            "query": ["query", str(root), "SELECT * FROM Track", "--txid", after]}[command]
    assert cli_main(argv) != 0
    out = capsys.readouterr()
    assert target.name in out.err and out.out == "", out


def test_concurrent_full_readers_download_a_large_file_once(file_replica, tmp_path, monkeypatch, stream_in_chunks):
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", 64 * 1024)
    root = tmp_path / "replica"
    shutil.copytree(file_replica.url, root)
    replica = open_replica(str(root))
    state = replica.latest()
    large = [o for o in {loc.obj for loc in replica.page_map(state).values()} if o.size > 64 * 1024]
    before = replica.counters.bytes_fetched
    threads = [threading.Thread(target=replica.read_pages, args=(state, range(1, state.commit + 1)),
                                kwargs={"verify": "full"}, name=f"reader-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert large and all(replica.verifier.is_verified(meta) for meta in replica.metas(large))
    assert replica.counters.bytes_fetched - before < 2 * sum(o.size for o in state.plan)


def test_cli_verify_option_applies_to_every_connection_of_the_command(file_replica, tmp_path, capsys,
                                                                      monkeypatch):
    root, target = corrupt_view(file_replica, tmp_path, "snapshot")
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", 0)  # the snapshot is read by ranges
    default = PROCESS.settings.verify
    try:
        assert cli_main(["query", str(root), "SELECT * FROM Track", "--txid", f"{target.max_txid:016x}",
                         "--verify", "full"]) == 1
    finally:
        PROCESS.configure(verify=default)  # the option set the process default: undo it
    out = capsys.readouterr()
    assert target.name in out.err and out.out == ""
    with pytest.raises(SystemExit):  # argparse: a usage error
        cli_main(["--verify", "sometimes", "history", str(root)])
