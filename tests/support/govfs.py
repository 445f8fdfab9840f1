"""Run SQL through Litestream's own Go VFS (`litestream-vfs.so`), the peer we compare against.

The Go VFS reads its configuration from the environment once, when the
extension is loaded (LITESTREAM_REPLICA_URL; LITESTREAM_LOG_LEVEL=DEBUG|INFO;
LITESTREAM_LOG_FILE, else it logs to stdout), and keeps polling goroutines
alive for the life of the process, so every run gets a fresh child Python
with its own environment. The child loads the extension into a throwaway
in-memory APSW connection, which registers the VFS named "litestream", then
opens `file:<name>?vfs=litestream` read-only and runs the statements.

On an empty or missing replica the Go VFS never fails: opening blocks,
re-listing every level once per second ("no backup files available yet,
waiting"). Hence the mandatory timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

VFS_NAME = "litestream"

#: Inherited variables that make the Go AWS SDK fail to build its S3 client
#: ("unable to add custom RootCAs HTTPClient, has no WithTransportOptions").
_BREAKS_GO_S3 = frozenset({"AWS_CA_BUNDLE"})

_CHILD = r"""
import json, os, sys, time, traceback
import apsw

def main(args):
    loader = apsw.Connection(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(args["extension"])
    started = time.perf_counter()
    db = apsw.Connection(args["uri"], flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    open_seconds = time.perf_counter() - started
    results = []
    for sql in args["statements"]:
        started = time.perf_counter()
        rows = [list(row) for row in db.execute(sql)]
        results.append({"sql": sql, "rows": rows, "seconds": time.perf_counter() - started})
    db.close()
    with open(args["output"], "w") as out:
        json.dump({"open_seconds": open_seconds, "results": results}, out,
                  default=lambda value: value.hex())

# os._exit: after a failed load the Go runtime can crash the interpreter's
# normal shutdown (SIGSEGV) before the traceback reaches stderr.
try:
    main(json.loads(sys.argv[1]))
except BaseException:
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
sys.stdout.flush()
os._exit(0)
"""


class GoVfsError(RuntimeError):
    """The Go VFS child failed or timed out; the message carries its output."""


@dataclass(frozen=True)
class StatementResult:
    """Rows of one statement (blobs as hex strings) and its wall time in the child."""

    sql: str
    rows: list[list[object]]
    seconds: float


@dataclass(frozen=True)
class GoVfsRun:
    """Everything one child run produced: open time, per-statement results, its log."""

    open_seconds: float
    results: list[StatementResult]
    output: str


def run_go_vfs(extension: Path, replica_url: str, statements: Sequence[str], *,
               env: Mapping[str, str] | None = None, db_name: str = "db.sqlite",
               timeout: float = 60.0, debug_log: bool = False) -> GoVfsRun:
    """Run `statements` through the Go VFS reading `replica_url`, in a child process.

    `env` adds to (and overrides) this process's environment, e.g. AWS
    credentials or AWS_ENDPOINT_URL_S3; AWS_CA_BUNDLE is inherited only if
    given there, as Litestream's S3 client refuses to start with it set. The child is killed after `timeout`
    seconds and GoVfsError reports its stdout/stderr (the Go VFS logs there).
    """
    inherited = {k: v for k, v in os.environ.items() if k not in _BREAKS_GO_S3}
    child_env = {**inherited, **(env or {}),
                 "LITESTREAM_REPLICA_URL": replica_url,
                 "LITESTREAM_LOG_LEVEL": "DEBUG" if debug_log else "INFO"}
    with tempfile.TemporaryDirectory(prefix="govfs-") as tmp:
        output = Path(tmp) / "result.json"
        args = json.dumps({"extension": str(extension), "statements": list(statements),
                           "uri": f"file:{db_name}?vfs={VFS_NAME}", "output": str(output)})
        try:
            done = subprocess.run([sys.executable, "-c", _CHILD, args], env=child_env,
                                  cwd=tmp, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise GoVfsError(f"Go VFS on {_redacted(replica_url)} did not finish within {timeout:g} s"
                             f"{_tail(exc.stdout, exc.stderr)}") from None
        if done.returncode != 0 or not output.is_file():
            raise GoVfsError(f"Go VFS on {_redacted(replica_url)} failed (exit {done.returncode})"
                             f"{_tail(done.stdout, done.stderr)}")
        data = json.loads(output.read_text())
    return GoVfsRun(
        open_seconds=data["open_seconds"],
        results=[StatementResult(r["sql"], r["rows"], r["seconds"]) for r in data["results"]],
        output=done.stdout + done.stderr)


def _redacted(url: str) -> str:
    """`url` without any user:password part, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _tail(stdout: str | bytes | None, stderr: str | bytes | None, limit: int = 4000) -> str:
    """The last `limit` characters of the child's combined output, for an error message."""
    text = "".join(part.decode(errors="replace") if isinstance(part, bytes) else part
                   for part in (stdout or "", stderr or ""))
    return f"; child output:\n{text[-limit:]}" if text.strip() else "; the child printed nothing"
