"""`restore` writes the file `litestream restore` writes, shows progress only on a terminal, and
never overwrites or leaves a partial file behind."""

from __future__ import annotations

import sys

import pexpect
import pytest

from support.cli import assert_one_line_error, cli, history
from support.replicas import step


def test_restore_writes_the_state_litestream_restores(file_replica, tmp_path):
    txid = step(file_replica, "vacuum")
    out = tmp_path / "restored.db"
    result = cli("restore", file_replica.url, "-o", str(out), "--txid", f"{txid:016x}")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == file_replica.restore(txid).read_bytes()
    assert "\r" not in result.stderr and "[#" not in result.stderr  # no progress bar into a pipe
    assert f"{txid:016x}" in result.stderr


def test_restore_shows_progress_only_on_a_terminal(file_replica, tmp_path):
    out = tmp_path / "tty.db"
    child = pexpect.spawn(sys.executable, ["-m", "litestream_vfs.cli", "restore", file_replica.url, "-o", str(out)],
                          encoding="utf-8", timeout=60, dimensions=(24, 200))
    child.expect(r"restoring TXID [0-9a-f]{16} .*\[#+\.*\] +\d+\.\d%")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert out.read_bytes() == file_replica.restore(file_replica.litestream_txids()[-1]).read_bytes()


def test_restore_refuses_to_overwrite(file_replica, tmp_path):
    out = tmp_path / "precious.db"
    out.write_bytes(b"keep me")
    assert_one_line_error(cli("restore", file_replica.url, "-o", str(out)), str(out))
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("where, reason", [("missing/dir/x.db", "No such file or directory"),
                                           ("a-file/x.db", "Not a directory")])
def test_restore_into_a_place_that_cannot_hold_the_file_names_it(file_replica, tmp_path, where, reason):
    (tmp_path / "a-file").write_bytes(b"")
    out = tmp_path / where
    result = cli("restore", file_replica.url, "-o", str(out))
    assert_one_line_error(result, f"cannot create {out}: {reason}")
    assert ".partial" not in result.stderr


def test_restore_at_a_time_copied_from_history(file_replica, tmp_path):
    txid = step(file_replica, "vacuum") - 1
    when = next(entry["time"] for entry in history(file_replica) if int(entry["txid"], 16) == txid)
    out = tmp_path / "at-time.db"
    result = cli("restore", file_replica.url, "-o", str(out), "--time", when)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == file_replica.restore(txid).read_bytes()
