"""Every state of replicas written by real Litestream (0.5.15 and 0.5.17, file and S3)
read through the VFS exactly as `litestream restore` rebuilds it (our own restore is
compared byte for byte in test_restore.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import apsw

from litestream_vfs.cli import main as cli_main
from litestream_vfs.connect import connect, open_replica
from support.truth import table_contents


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_history_lists_every_state_litestream_can_restore(replica_env):
    replica = open_replica(replica_env.url)
    ours = [entry.txid for entry in replica.history()]
    assert ours == replica_env.litestream_txids()
    assert [t for _, t in replica_env.step_txids] == sorted({t for _, t in replica_env.step_txids})
    assert set(t for _, t in replica_env.step_txids) <= set(ours)


def test_vfs_reads_every_txid_exactly(replica_env, tmp_path):
    connection = connect(replica_env.url)
    for txid in replica_env.litestream_txids():
        connection.execute(f"PRAGMA litestream_txid='{txid:016x}'")
        truth = apsw.Connection(str(replica_env.restore(txid)), flags=apsw.SQLITE_OPEN_READONLY)
        assert table_contents(connection) == table_contents(truth), f"TXID {txid:016x}"
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        truth.close()


def test_cli_restore_and_validate(replica_env, tmp_path, capsys):
    latest = replica_env.litestream_txids()[-1]
    out = tmp_path / "cli.db"
    assert cli_main(["restore", replica_env.url, "-o", str(out)]) == 0
    assert sha256(out) == sha256(replica_env.restore(latest))
    assert cli_main(["restore", replica_env.url, "-o", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert cli_main(["validate", replica_env.url]) == 0
    assert "OK:" in capsys.readouterr().out
