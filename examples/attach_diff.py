"""What changed between two states: ATTACH the same replica at an earlier time and compare with SQL.

    python examples/attach_diff.py

The recipe for "rows changed in the last hour" on your own replica is the same
with litestream_time=1 hour ago.
"""

from __future__ import annotations

from urllib.parse import quote

import apsw

import litestream_vfs  # noqa: F401 - importing registers the "litestream" VFS
from _demo import demo_replica, run

TABLES = ("Artist", "Album", "Track", "Customer")


def main() -> None:
    demo = demo_replica()
    replica = quote(demo.replica_url, safe="/")
    db = apsw.Connection(f"file:chinook.db?vfs=litestream&replica={replica}",
                         flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    (initial,), = db.execute("SELECT time FROM litestream_history LIMIT 1")  # the oldest state
    db.execute(f"ATTACH 'file:chinook.db?vfs=litestream&replica={replica}&litestream_time={initial}' AS past")
    (now,), = db.execute("PRAGMA main.litestream_txid")
    (then,), = db.execute("PRAGMA past.litestream_txid")
    print(f"Comparing main (TXID {now}) with past (TXID {then}, at {initial}):")
    for table in TABLES:
        added_or_changed = db.execute(f"SELECT * FROM main.{table} EXCEPT SELECT * FROM past.{table}").fetchall()
        removed_or_changed = db.execute(f"SELECT * FROM past.{table} EXCEPT SELECT * FROM main.{table}").fetchall()
        print(f"  {table}: {len(added_or_changed)} rows new or changed, "
              f"{len(removed_or_changed)} old versions gone")
        for row in added_or_changed[:2]:
            print(f"    now:  {row}")
        for row in removed_or_changed[:2]:
            print(f"    then: {row}")


if __name__ == "__main__":
    run(main)
