"""`litestream-vfs shell`: APSW's shell with dot-commands to move in time."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

import apsw
import apsw.shell

from .cli.output import age_text
from .errors import ReplicaError
from .timeparse import format_time, format_txid, parse_time
from .vfs import ReplicaFile, file_of

INTRO = ("litestream-vfs shell on {url}\n"
         "Enter SQL, or .help. Move in time with .time WHEN, .txid TXID, .latest; "
         "see the states with .history, the requests with .stats.\n")


class LitestreamShell(apsw.shell.Shell):
    """The prompt names the state being read; .time/.txid/.latest/.history/.stats move and inspect.

    Everything else is APSW's shell, so .tables, .schema, .mode, .output... work as usual.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._our_prompt: str | None = None
        self.errors = 0
        #: The last error this shell printed (with `.bail on` it is raised again, already shown).
        self.reported: BaseException | None = None
        if "NO_COLOR" in os.environ:  # https://no-color.org, as APSW's own command line honours it
            self.command_colour(["off"])

    def _file(self) -> ReplicaFile:
        try:
            return file_of(self.db)
        except ReplicaError:
            raise self.Error("the current database is not a Litestream replica (was .open used?)") from None

    def handle_exception(self) -> None:
        """APSW's error printing, counting the errors (as sqlite3, a script with errors exits 1)."""
        error = sys.exc_info()[1]
        if not isinstance(error, SystemExit):
            self.errors += 1
            self.reported = error
        super().handle_exception()

    def get_complete_line(self):  # noqa: D401 - APSW's hook for reading input
        """Refresh the prompt (unless the user set one with .prompt) before reading a line."""
        if self.prompt in ("sqlite> ", self._our_prompt):
            try:
                file = file_of(self.db)
            except ReplicaError:  # .open switched to an ordinary database
                self.prompt = "sqlite> "
            else:
                mode = "latest" if file.following else "pinned"
                self.prompt = f"{file.label}@{format_txid(file.state.txid)} ({mode})> "
            self._our_prompt = self.prompt
        return super().get_complete_line()

    def _travel(self, pragma: str, value: str) -> None:
        self._file()
        escaped = value.replace("'", "''")
        self.db.execute(f"PRAGMA {pragma}='{escaped}'").fetchall()
        self.write(self.stdout, f"now reading {self._describe()}\n")

    def _describe(self) -> str:
        file = self._file()
        state = file.state
        following = " (following latest)" if file.following else ""
        return f"TXID {format_txid(state.txid)} at {format_time(state.timestamp)}{following}"

    def command_time(self, cmd):
        """time ?WHEN?: read the last state at or before WHEN (RFC 3339, 'latest', or e.g. '10 minutes ago'); no WHEN: show the state"""
        if not cmd:
            self.write(self.stdout, self._describe() + "\n")
            return
        self._travel("litestream_time", " ".join(cmd))

    def command_txid(self, cmd):
        """txid ?TXID?: read exactly the state with this TXID (hex); no TXID: show the state"""
        if not cmd:
            self.write(self.stdout, self._describe() + "\n")
            return
        if len(cmd) != 1:
            raise self.Error("txid takes one TXID, e.g. .txid 000000000000002a")
        self._travel("litestream_txid", cmd[0])

    def command_latest(self, cmd):
        """latest: follow the newest state again (new transactions appear as they arrive)"""
        self._travel("litestream_time", "latest")

    def command_history(self, cmd):
        """history: every restorable state (TXID, time, age, level, sizes); * marks the one being read"""
        self._file()
        now = datetime.now(timezone.utc)
        self.write(self.stdout, f"  {'txid':<16}  {'time (UTC)':<24}  {'age':>9}  level  {'file size':>10}  {'db size':>12}\n")
        for txid, time, level, size, db_size, current in self.db.execute("SELECT * FROM litestream_history"):
            mark = "*" if current else " "
            age = age_text(now - parse_time(time))
            self.write(self.stdout, f"{mark} {txid}  {time}  {age:>9}  L{level:<4}  {size:>10}  {db_size:>12}\n")

    def command_stats(self, cmd):
        """stats: requests, bytes and cache counters of this connection and of the whole process"""
        self._file()
        for scope, name, value in self.db.execute("SELECT * FROM litestream_stats"):
            shown = f"{value:.3f}" if isinstance(value, float) else "-" if value is None else str(value)
            self.write(self.stdout, f"{scope:<10}  {name:<16}  {shown:>12}\n")


def run_shell(connection: apsw.Connection) -> int:
    """Run the shell on `connection` until EOF or .exit; returns the exit status.

    Like sqlite3: 1 when input that is not a terminal had errors, or `.bail on` stopped at one.
    """
    shell = LitestreamShell(db=connection)
    try:
        shell.cmdloop(intro=INTRO.format(url=file_of(connection).replica.storage.url))
    except Exception as exc:  # noqa: BLE001 - `.bail on` re-raises an error the shell has printed
        if exc is not shell.reported:
            raise
        return 1
    return 1 if shell.errors and not shell.interactive else 0
