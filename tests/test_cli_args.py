"""Options shared by every command: usage errors exit 2 naming the culprit, `--debug` anywhere."""

from __future__ import annotations

import pytest

from support.cli import cli


@pytest.mark.parametrize("args", [[], ["query"], ["query", "x", "SELECT 1", "--time", "now", "--txid", "1"],
                                  ["history", "x", "--format", "xml"]])
def test_usage_errors_exit_2(args):
    result = cli(*args)
    assert result.returncode == 2
    assert "usage: litestream-vfs" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["first", "after the command", "last"])
def test_debug_is_accepted_anywhere(tmp_path, where):
    missing = str(tmp_path / "missing")
    args = {"first": ["--debug", "query", missing, "SELECT 1"],
            "after the command": ["query", "--debug", missing, "SELECT 1"],
            "last": ["query", missing, "SELECT 1", "--debug"]}[where]
    result = cli(*args)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and missing in result.stderr
