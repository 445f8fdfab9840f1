"""`litestream-vfs shell` driven through a pseudo-terminal, as a person would use it.

Query results after each move in time are checked against the real
`litestream restore` of the same state.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pexpect
import pytest


PROMPT = r"[^\s@]+@([0-9a-f]{16}) \((latest|pinned)\)> "
ROCK_PRICE = "SELECT max(UnitPrice) FROM Track WHERE GenreId = 1;"



class Session:
    """A running shell: `run` sends a line and returns what it printed before the next prompt."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.state: tuple[str, str] = ("", "")

    def wait_prompt(self) -> str:
        self.child.expect(PROMPT)
        self.state = (self.child.match.group(1), self.child.match.group(2))
        return self.child.before

    def run(self, line: str) -> str:
        self.child.sendline(line)
        output = self.wait_prompt()
        return output.replace("\r\n", "\n").split("\n", 1)[1] if "\n" in output else ""  # drop the echo

    def value(self, sql: str) -> str:
        return self.run(sql).strip()


def spawn(url: str, *options: str, env: dict[str, str]) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "litestream_vfs.cli", "shell", url, *options],
                         env={**os.environ, **env, "NO_COLOR": "1"}, encoding="utf-8",
                         timeout=60, dimensions=(50, 250))


@pytest.fixture
def shell(file_replica) -> Iterator[Session]:
    session = Session(spawn(file_replica.url, env=file_replica.env))
    session.wait_prompt()
    session.run(".mode list")
    yield session
    session.child.sendline(".exit")
    session.child.expect(pexpect.EOF)
    session.child.close()
    assert session.child.exitstatus == 0


def test_prompt_follows_latest_and_moves_with_txid_time_latest(shell, file_replica):
    txids = file_replica.litestream_txids()
    latest = txids[-1]
    assert shell.state == (f"{latest:016x}", "latest")
    assert shell.value(ROCK_PRICE) == str(file_replica.truth(latest, ROCK_PRICE)[0][0])

    before = dict(file_replica.step_txids)["reprice rock"] - 1
    moved = shell.run(f".txid {before:x}")
    assert f"now reading TXID {before:016x}" in moved
    assert shell.state == (f"{before:016x}", "pinned")
    old_price = shell.value(ROCK_PRICE)
    assert old_price == str(file_replica.truth(before, ROCK_PRICE)[0][0])
    assert old_price != str(file_replica.truth(latest, ROCK_PRICE)[0][0])

    history = shell.run(".history")
    current = [line for line in history.splitlines() if line.startswith("* ")]
    assert len(current) == 1 and current[0].split()[1] == f"{before:016x}"
    rows = [line.lstrip("* ").split() for line in history.splitlines()[1:] if line.strip()]
    times = {fields[0]: fields[1] for fields in rows}
    assert set(times) == {f"{t:016x}" for t in txids}

    target = dict(file_replica.step_txids)["rewrite emails"]
    shell.run(f".time {times[f'{target:016x}']}")  # a time copied from .history opens that state
    assert shell.state == (f"{target:016x}", "pinned")
    email = "SELECT Email FROM Customer WHERE CustomerId = 1;"
    assert shell.value(email) == file_replica.truth(target, email)[0][0]

    assert "following latest" in shell.run(".latest")
    assert shell.state == (f"{latest:016x}", "latest")


def test_errors_print_one_line_and_keep_the_shell_alive(shell, file_replica):
    state = shell.state
    error = shell.run(".time the day after never")
    assert [line for line in error.splitlines() if line.strip()] == [
        line for line in error.splitlines() if "the day after never" in line]
    assert "Traceback" not in error
    assert shell.state == state

    first = file_replica.litestream_txids()[0]
    out_of_history = shell.run(".time 2001-01-01T00:00:00Z")
    assert f"{first:016x}" in out_of_history and "Traceback" not in out_of_history
    assert "readonly" in shell.run("DELETE FROM Track;")
    assert shell.value("SELECT 6 * 7;") == "42"


def test_help_lists_the_time_travel_commands(shell):
    listing = shell.run(".help")
    for command in ("time", "txid", "latest", "history", "stats"):
        assert re.search(rf"^\.{command}\b.*\S", listing, re.MULTILINE), command


def test_ordinary_dot_commands_work(shell, file_replica):
    latest = file_replica.litestream_txids()[-1]
    tables = file_replica.truth(latest, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    assert set(shell.run(".tables").split()) == {name for name, in tables}
    (genre_sql,), = file_replica.truth(latest, "SELECT sql FROM sqlite_master WHERE name = 'Genre'")
    assert " ".join(genre_sql.split()) in " ".join(shell.run(".schema Genre").split())
    shell.run(".mode csv")
    shell.run(".header on")
    rows = file_replica.truth(latest, "SELECT GenreId, Name FROM Genre ORDER BY GenreId LIMIT 2")
    assert shell.run("SELECT GenreId, Name FROM Genre ORDER BY GenreId LIMIT 2;").split() == [
        "GenreId,Name", *(f"{i},{name}" for i, name in rows)]


def test_stats_count_this_connections_requests(shell):
    shell.value("SELECT count(*) FROM Track;")
    stats = {}
    for line in shell.run(".stats").splitlines():
        scope, name, value = line.split(maxsplit=2)
        stats[scope, name] = value
    assert stats["connection", "last_poll_error"] == "-"  # no error: NULL shows as '-'
    stats = {key: float(value) for key, value in stats.items() if value != "-"}  # NULL: no error, max_lag off
    assert stats["connection", "gets"] >= 1
    assert stats["process", "gets"] >= stats["connection", "gets"]


def test_shell_opens_at_a_time_given_on_the_command_line(file_replica):
    target = dict(file_replica.step_txids)["insert genre"]
    session = Session(spawn(file_replica.url, "--txid", f"{target:016x}", env=file_replica.env))
    session.wait_prompt()
    assert session.state == (f"{target:016x}", "pinned")
    session.run(".mode list")
    genres = "SELECT count(*) FROM Genre;"
    assert session.value(genres) == str(file_replica.truth(target, genres)[0][0])
    session.child.sendeof()
    session.child.expect(pexpect.EOF)
    session.child.close()
    assert session.child.exitstatus == 0


def piped(url: str, script: str, env: dict[str, str]) -> "subprocess.CompletedProcess[str]":
    """The shell reading `script` from a pipe, as in `litestream-vfs shell URL < script.sql`."""
    return subprocess.run([sys.executable, "-m", "litestream_vfs.cli", "shell", url], input=script,
                          env={**os.environ, **env, "NO_COLOR": "1"}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_a_script_with_errors_runs_on_and_exits_1_like_sqlite3(file_replica):
    result = piped(file_replica.url, "SELECT nope FROM Track;\nSELECT 6 * 7;\n", file_replica.env)
    assert result.returncode == 1
    assert result.stdout.split() == ["42"]
    assert result.stderr.count("no such column: nope") == 1 and "Traceback" not in result.stderr

    clean = piped(file_replica.url, "SELECT 6 * 7;\n", file_replica.env)
    assert (clean.returncode, clean.stdout.split(), clean.stderr) == (0, ["42"], "")


@pytest.mark.parametrize("error, message", [("SELECT nope FROM Track;", "no such column: nope"),
                                            (".time the day after never", "'the day after never'")])
def test_bail_stops_at_the_first_error_and_prints_it_once(file_replica, error, message):
    result = piped(file_replica.url, f".bail on\n{error}\nSELECT 6 * 7;\n", file_replica.env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count(message) == 1, result.stderr
    assert "Traceback" not in result.stderr and "litestream-vfs: error" not in result.stderr
