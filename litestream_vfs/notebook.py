"""Notebook helpers: a replica (at any time) straight into a pandas DataFrame.

pandas is optional (`pip install 'litestream-apsw[pandas]'`) and imported only
when `read_sql` runs. `pandas.read_sql(sql, apsw_connection)` also works for
queries that return rows, with a UserWarning (APSW is not sqlite3), but fails
on an empty result because APSW has no column description once a statement
has finished; `read_sql` here has neither problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import apsw

from .connect import connect, replica_uri
from .described import Described

if TYPE_CHECKING:
    import pandas


def read_sql(source: str | apsw.Connection, sql: str, *, time: str | None = None, txid: str | None = None,
             params: Sequence[Any] | dict[str, Any] | None = None,
             index_col: str | Sequence[str] | None = None) -> "pandas.DataFrame":
    """Run `sql` on a replica URL (at `time`/`txid`, else latest) or on an open connection; return a DataFrame.

    Columns keep their SQL names and order even when no row matches.
    """
    import pandas

    if isinstance(source, apsw.Connection):
        if time or txid:
            raise ValueError("time/txid apply to a replica URL; for a connection use "
                             "PRAGMA litestream_time or attach()")
        connection = source
    else:
        connection = connect(source, time=time, txid=txid)
    columns, rows = query(connection, sql, params)
    frame = pandas.DataFrame.from_records(rows, columns=columns)
    return frame.set_index(index_col) if index_col is not None else frame


def query(connection: apsw.Connection, sql: str,
          params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
    """(column names of the last statement, its rows): names are known even for an empty result."""
    described = Described(connection.cursor())
    rows = described.cursor.execute(sql, params or ()).fetchall()
    return described.names, rows


def results(connection: apsw.Connection, sql: str,
            params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[list[str], list[tuple]]]:
    """(column names, rows) of every statement in `sql`, in order ([] names: a statement without columns)."""
    found: list[tuple[list[str], list[tuple]]] = []
    described = Described(connection.cursor(), on_start=lambda names: found.append((names, [])))
    for row in described.cursor.execute(sql, params or ()):
        found[-1][1].append(row)
    return found


def attach(connection: apsw.Connection, url: str, schema: str, *, time: str | None = None,
           txid: str | None = None) -> None:
    """ATTACH the replica at `url` (at `time`/`txid`, else latest) to `connection` as `schema`.

    Attaching the same replica at an earlier time lets one query compare two states,
    e.g. ``SELECT * FROM main.Track EXCEPT SELECT * FROM past.Track``.
    """
    connection.execute(f'ATTACH ? AS "{schema.replace(chr(34), chr(34) * 2)}"',
                       (replica_uri(url, time=time, txid=txid),))
