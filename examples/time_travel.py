"""Walk through every state a replica retains, and open one by time or by TXID.

    python examples/time_travel.py
"""

from __future__ import annotations

from urllib.parse import quote

import apsw

import litestream_vfs  # noqa: F401 - importing registers the "litestream" VFS
from _demo import demo_replica, run

SNAPSHOT = """SELECT (SELECT count(*) FROM Artist),
                     (SELECT max(UnitPrice) FROM Track WHERE GenreId = 1),
                     (SELECT City FROM Customer WHERE CustomerId = 1)"""


def main() -> None:
    demo = demo_replica()
    uri = f"file:chinook.db?vfs=litestream&replica={quote(demo.replica_url, safe='/')}"
    db = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)

    print("Every retained state (litestream_history), read with PRAGMA litestream_txid:")
    print(f"  {'txid':<16}  {'time':<24}  artists  rock price  customer 1 city")
    for txid, when, *_ in db.execute("SELECT * FROM litestream_history").fetchall():
        db.execute(f"PRAGMA litestream_txid = '{txid}'")
        artists, rock_price, city = db.execute(SNAPSHOT).fetchone()
        print(f"  {txid}  {when}  {artists:>7}  {rock_price:>10}  {city}")

    # Open a connection directly at a time: the last state at or before it.
    landed = demo.landed("price rise")
    past = apsw.Connection(f"{uri}&litestream_time={landed}",
                           flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    (txid,), = past.execute("PRAGMA litestream_txid")
    print(f"Opened at litestream_time={landed}: TXID {txid}, customer 1 lives in "
          f"{past.execute('SELECT City FROM Customer WHERE CustomerId = 1').fetchone()[0]}")

    db.execute("PRAGMA litestream_time = 'latest'")  # follow new transactions again
    (txid,), = db.execute("PRAGMA litestream_txid")
    print(f"Back to latest: TXID {txid}")


if __name__ == "__main__":
    run(main)
