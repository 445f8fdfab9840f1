"""`litestream-vfs shell`: APSW's shell with dot-commands to move in time."""

from __future__ import annotations

import apsw
import apsw.shell

from .timeparse import format_time, format_txid
from .vfs import file_of


class LitestreamShell(apsw.shell.Shell):
    """The prompt names the state being read; .time/.txid/.latest/.history/.stats move and inspect."""

    def _file(self):
        return file_of(self.db)

    def get_complete_line(self):  # noqa: D401 - APSW's hook for reading input
        state = self._file().state
        mode = "latest" if self._file().following else "pinned"
        self.prompt = f"litestream {format_txid(state.txid)} {mode}> "
        return super().get_complete_line()

    def _pragma(self, name: str, value: str) -> None:
        escaped = value.replace("'", "''")
        (result,), = self.db.execute(f"PRAGMA {name}='{escaped}'").fetchall()
        self.write(self.stdout, f"now reading {self._describe()}\n")

    def _describe(self) -> str:
        state = self._file().state
        return f"TXID {format_txid(state.txid)} at {format_time(state.timestamp)}"

    def command_time(self, cmd):
        """time WHEN: read the last state at or before WHEN (RFC 3339, 'latest', or e.g. '10 minutes ago')"""
        if not cmd:
            self.write(self.stdout, self._describe() + "\n")
            return
        self._pragma("litestream_time", " ".join(cmd))

    def command_txid(self, cmd):
        """txid TXID: read exactly the state with this TXID (hex)"""
        if len(cmd) != 1:
            raise self.Error("txid takes one TXID")
        self._pragma("litestream_txid", cmd[0])

    def command_latest(self, cmd):
        """latest: follow the newest state again (new transactions appear as they arrive)"""
        self._pragma("litestream_time", "latest")

    def command_history(self, cmd):
        """history: list every restorable state (TXID, time, level, sizes); * marks the one being read"""
        for txid, time, level, size, db_size, current in self.db.execute("SELECT * FROM litestream_history"):
            mark = "*" if current else " "
            self.write(self.stdout, f"{mark} {txid}  {time}  L{level}  {size:>10}  {db_size:>12}\n")

    def command_stats(self, cmd):
        """stats: requests, bytes and cache counters of this connection and this process"""
        for scope, name, value in self.db.execute("SELECT * FROM litestream_stats"):
            self.write(self.stdout, f"{scope:<10} {name:<16} {value}\n")


def run_shell(connection: apsw.Connection) -> int:
    shell = LitestreamShell(db=connection)
    shell.cmdloop(intro=f"litestream-vfs shell on {file_of(connection).replica.storage.url}\n"
                        "Enter SQL, '.help' for commands; '.time', '.txid', '.latest', '.history', '.stats' travel in time.")
    return 0
