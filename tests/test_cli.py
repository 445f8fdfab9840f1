"""The `litestream-vfs` command line as a whole, run as a real subprocess (real exit codes,
real stderr): errors common to every command are one line naming the culprit.

Each command group has its own twin (test_cli_query.py, test_cli_history.py,
test_cli_restore.py, ...); shared helpers are in support/cli.py.
"""

from __future__ import annotations

import os
import socket

import pytest

from support.cli import assert_one_line_error, cli


# -- errors: one line, exit 1, no traceback --------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bad_url_scheme():
    assert_one_line_error(cli("history", "bogus://bucket/db"), "bogus")


def test_s3_without_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LITESTREAM_"))}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    url = f"s3://bucket/db?endpoint=http://127.0.0.1:{_free_port()}&region=us-east-1&forcePathStyle=true"
    assert_one_line_error(cli("query", url, "SELECT 1", env=env), "credentials", "s3://bucket/db")


@pytest.mark.parametrize("command", ["query", "shell", "restore"])
def test_unparseable_time(file_replica, tmp_path, command):
    extra = {"query": ["SELECT 1"], "shell": [], "restore": ["-o", str(tmp_path / "x.db")]}[command]
    result = cli(command, file_replica.url, *extra, "--time", "the day after never")
    assert_one_line_error(result, "'the day after never'")
    assert not (tmp_path / "x.db").exists()


def test_time_before_history_names_the_available_states(file_replica):
    txids = file_replica.litestream_txids()
    result = cli("query", file_replica.url, "SELECT 1", "--time", "2001-01-01T00:00:00Z")
    assert_one_line_error(result, "2001-01-01T00:00:00", f"{txids[0]:016x}", f"{txids[-1]:016x}")


@pytest.mark.parametrize("where", ["beyond", "zero"])
def test_txid_outside_history_names_the_available_states(file_replica, tmp_path, where):
    txids = file_replica.litestream_txids()
    given = {"beyond": f"{txids[-1] + 1000:016x}", "zero": "0"}[where]
    available = (f"{given:0>16}", f"available states: TXID {txids[0]:016x}", f"to TXID {txids[-1]:016x}")
    assert_one_line_error(cli("query", file_replica.url, "SELECT 1", "--txid", given), *available)
    out = tmp_path / "never.db"
    assert_one_line_error(cli("restore", file_replica.url, "-o", str(out), "--txid", given), *available)
    assert not out.exists()


@pytest.mark.parametrize("command", ["query", "history", "restore", "validate", "shell", "log"])
def test_empty_missing_and_directory_urls(tmp_path, command):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    extra = {"query": ["SELECT 1"], "restore": ["-o", str(tmp_path / "out.db")]}.get(command, [])
    assert_one_line_error(cli(command, str(empty), *extra), str(empty))
    assert_one_line_error(cli(command, str(missing), *extra), str(missing))
    assert_one_line_error(cli(command, f"{tmp_path}/", *extra), "directory of replicas")


@pytest.mark.parametrize("url, missing", [("s3://", "no bucket name"), ("webdav://", "no host name")])
@pytest.mark.parametrize("command", ["query", "history"])
def test_a_url_without_bucket_or_host_says_so(url, missing, command):
    extra = ["SELECT 1"] if command == "query" else []
    assert_one_line_error(cli(command, url, *extra), f"'{url}' has {missing}")


def test_debug_shows_the_traceback(tmp_path):
    result = cli("--debug", "history", str(tmp_path / "missing"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr and str(tmp_path / "missing") in result.stderr


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch, capsys, file_replica):
    """Whatever a command raises, main() prints one line naming it (traceback only with --debug)."""
    from litestream_vfs import notebook
    from litestream_vfs.cli import main

    def broken(*args, **kwargs):
        raise KeyError("no such thing")

    monkeypatch.setattr(notebook, "results", broken)
    assert main(["query", file_replica.url, "SELECT 1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("litestream-vfs: error: KeyError: 'no such thing'") and "--debug" in err
    with pytest.raises(KeyError):
        main(["query", file_replica.url, "SELECT 1", "--debug"])
