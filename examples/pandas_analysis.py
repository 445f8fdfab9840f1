"""A replica into pandas, at any time: one call per DataFrame.

    pip install 'litestream-apsw[pandas]'   (in a checkout: pip install -e '.[pandas]')
    python examples/pandas_analysis.py
"""

from __future__ import annotations

from litestream_vfs.connect import connect
from litestream_vfs.notebook import attach, read_sql
from _demo import demo_replica, run

GENRE_PRICES = """SELECT g.Name AS genre, avg(t.UnitPrice) AS price, count(*) AS tracks
                  FROM Track t JOIN Genre g USING (GenreId) GROUP BY g.Name"""


def main() -> None:
    demo = demo_replica()
    url = demo.replica_url
    before = demo.landed("new artist")  # the state just before the price rise

    now = read_sql(url, GENRE_PRICES, index_col="genre")
    then = read_sql(url, GENRE_PRICES, time=before, index_col="genre")
    change = (now["price"] - then["price"]).round(2)
    print("Average price change per genre since the price rise:")
    print(change[change != 0].to_string())

    # Rows changed since a time: attach the replica at that time and EXCEPT.
    db = connect(url)
    attach(db, url, "past", time=before)
    changed = read_sql(db, "SELECT * FROM main.Customer EXCEPT SELECT * FROM past.Customer")
    print(f"Customers changed since {before}:")
    print(changed[["CustomerId", "FirstName", "LastName", "City", "Country"]].to_string(index=False))


if __name__ == "__main__":
    run(main)
