"""Options shared by every command (cli/args.py): usage errors exit 2 with one line naming the
culprit, `--debug` and `--verify` anywhere, state and range options reach the command."""

from __future__ import annotations

import pytest

from litestream_vfs.cli import build_parser, main
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


def usage_error(capsys, argv: list[str]) -> str:
    """The last stderr line of an argument error (argparse prints the usage above it)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("argv, culprits", [
    (["query", "u", "SELECT 1", "--verify", "sometimes"], ["--verify", "'sometimes'", "auto", "full", "ranges"]),
    (["--verify", "sometimes", "history", "u"], ["--verify", "'sometimes'"]),
    (["history", "u", "--format", "xml"], ["--format", "'xml'", "table", "json", "csv"]),
    (["query", "u", "SELECT 1", "--time", "now", "--txid", "1"], ["--txid", "not allowed with argument --time"]),
    (["restore", "u"], ["-o/--output"]),
    (["frobnicate"], ["'frobnicate'", "query", "restore"]),
])
def test_an_argument_error_is_one_line_naming_the_culprit(capsys, argv, culprits):
    line = usage_error(capsys, argv)
    assert line.startswith("litestream-vfs")
    assert ": error: " in line
    for culprit in culprits:
        assert culprit in line


@pytest.mark.parametrize("argv, verify", [
    (["history", "u"], None),
    (["--verify", "full", "history", "u"], "full"),
    (["history", "--verify", "ranges", "u"], "ranges"),
    (["query", "u", "SELECT 1", "--verify", "auto"], "auto"),
])
def test_verify_and_debug_are_read_before_or_after_the_command(argv, verify):
    args = build_parser().parse_args(argv)
    assert args.verify == verify and args.debug is False
    assert build_parser().parse_args([*argv, "--debug"]).debug is True


def test_every_command_module_registers_its_commands_with_a_runner():
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command").choices
    assert {"query", "shell", "history", "validate", "restore", "log", "diff", "blame", "bisect"} <= set(commands)
    for name, sub in commands.items():
        assert sub.get_default("run") is not None, name


def test_state_and_range_options_reach_the_command():
    parser = build_parser()
    at = parser.parse_args(["query", "u", "SELECT 1", "--txid", "00ff"])
    assert (at.txid, at.time, at.format) == ("00ff", None, "table")
    when = parser.parse_args(["restore", "u", "-o", "x.db", "--time", "1 hour ago"])
    assert (when.time, when.txid, when.output) == ("1 hour ago", None, "x.db")
    span = parser.parse_args(["diff", "u", "Genre", "--from", "1", "--to", "latest"])
    assert (span.from_, span.to) == ("1", "latest")


def test_version_names_the_distribution(capsys):
    from litestream_vfs.distribution import NAME, version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert NAME in out and (version() or "not installed") in out
