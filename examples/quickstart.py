"""Quickstart: read a Litestream replica as a SQLite database, now and in the past.

    python examples/quickstart.py

The first run builds a small demo replica with the real `litestream` binary
(a few seconds, no network, no credentials); later runs reuse it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import quote

import apsw

import litestream_vfs  # noqa: F401 - importing registers the "litestream" VFS
from _demo import demo_replica, run

ROCK_PRICES = "SELECT count(*), min(UnitPrice), max(UnitPrice) FROM Track WHERE GenreId = 1"


def main() -> None:
    started = time.monotonic()
    demo = demo_replica()
    print(f"{'Built' if demo.built else 'Reusing'} the demo replica in {demo.replica_url}")

    db = apsw.Connection(f"file:chinook.db?vfs=litestream&replica={quote(demo.replica_url, safe='/')}",
                         flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    (txid,), = db.execute("PRAGMA litestream_txid")
    (when,), = db.execute("PRAGMA litestream_time")
    print(f"Latest state: TXID {txid} at {when}")
    tracks, low, high = db.execute(ROCK_PRICES).fetchone()
    print(f"  now: {tracks} rock tracks priced {low} to {high}")

    before = demo.landed("new artist")  # the price rise came right after this change
    db.execute(f"PRAGMA litestream_time = '{before}'")  # takes effect at the next query
    (txid,), = db.execute("PRAGMA litestream_txid")
    tracks, low, high = db.execute(ROCK_PRICES).fetchone()
    print(f"Time travel to {before} (TXID {txid}):")
    print(f"  then: {tracks} rock tracks priced {low} to {high}")
    print(f"Done in {time.monotonic() - started:.1f} s")

    replica, then, cli = shlex.quote(demo.replica_url), shlex.quote(before), command_line()
    print("Next, the same replica from the command line (states, a row that changed since then, SQL then):")
    print(f"  {cli} history {replica}")
    print(f"  {cli} diff {replica} Customer --from {then} --to latest")
    print(f"  {cli} shell {replica} --time {then}")


def command_line() -> str:
    """How to run `litestream-vfs` from here: its name if on PATH, else its path beside this Python."""
    beside = Path(sys.executable).parent / "litestream-vfs"
    if not beside.is_file() or shutil.which("litestream-vfs") == str(beside):
        return "litestream-vfs"
    relative = os.path.relpath(beside)
    return shlex.quote(str(beside) if relative.startswith("..") else relative)


if __name__ == "__main__":
    run(main)
