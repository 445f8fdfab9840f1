"""One replica, two points in time, four data tools: pandas, Polars, DuckDB and jupysql.

    pip install -e '.[notebook,examples]'
    python examples/data_tools.py

Each tool reads the demo replica at `latest` and as it was before the rock
price rise, in the three lines the README shows.
"""

from __future__ import annotations

from urllib.parse import quote

from _demo import demo_replica

SQL = "SELECT count(*) AS tracks, round(avg(UnitPrice), 2) AS price FROM Track WHERE GenreId = 1"


def main() -> None:
    demo = demo_replica()
    url, before = demo.replica_url, demo.landed("new artist")  # the state just before the price rise
    R, T = quote(url, safe=""), quote(before, safe="")  # noqa: N806 - as in the README
    print(f"now: latest; then: {before}")

    import pandas as pd
    now = pd.read_sql(SQL, f"litestream:///chinook.db?replica={R}")
    then = pd.read_sql(SQL, f"litestream:///chinook.db?replica={R}&litestream_time={T}")
    show("pandas", now.itertuples(index=False), then.itertuples(index=False))

    import polars as pl, litestream_vfs  # noqa: E401
    now = pl.from_arrow(litestream_vfs.arrow(url, SQL))
    then = pl.from_arrow(litestream_vfs.arrow(url, SQL, time=before))
    show("Polars", now.rows(), then.rows())

    import duckdb
    latest, past = (litestream_vfs.arrow(url, "SELECT * FROM Track", time=t) for t in ("latest", before))
    (repriced,), = duckdb.sql("SELECT count(*) FROM latest JOIN past USING (TrackId) WHERE latest.UnitPrice <> past.UnitPrice").fetchall()
    print(f"DuckDB: {repriced} tracks repriced since then")

    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sql")
    ip.run_line_magic("config", "SqlMagic.displaylimit = 0")
    now = ip.run_line_magic("sql", f"litestream:///chinook.db?replica={R} {SQL}")
    then = ip.run_line_magic("sql", f"litestream:///chinook.db?replica={R}&litestream_time={T} {SQL}")
    show("jupysql", now, then)


def show(tool: str, now: object, then: object) -> None:
    (tracks_now, price_now), = [tuple(row) for row in now]
    (tracks_then, price_then), = [tuple(row) for row in then]
    print(f"{tool}: now {tracks_now} rock tracks at {price_now}, then {tracks_then} at {price_then}")


if __name__ == "__main__":
    main()
