"""Quickstart: read a Litestream replica as a SQLite database, now and in the past.

    python examples/quickstart.py

The first run builds a small demo replica with the real `litestream` binary
(a few seconds, no network, no credentials); later runs reuse it.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import apsw

import litestream_vfs  # noqa: F401 - importing registers the "litestream" VFS
from _demo import demo_replica

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


if __name__ == "__main__":
    main()
