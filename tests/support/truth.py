"""Comparing what a connection reads with ground truth: every table, row by row."""

from __future__ import annotations

import re
from pathlib import Path

import apsw

from .proxy import Proxy


def table_contents(connection: apsw.Connection, schema: str = "main") -> dict[str, list]:
    """Every table's rows in rowid order, by table name."""
    names = [r[0] for r in connection.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table' ORDER BY name")]
    return {name: connection.execute(f'SELECT * FROM {schema}."{name}" ORDER BY rowid').fetchall()
            for name in names}


def ground_truth(path: Path) -> dict[str, list]:
    """`table_contents` of a database file (e.g. a real `litestream restore` output), read-only."""
    truth = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return table_contents(truth)
    finally:
        truth.close()


def through(proxy: Proxy, url: str) -> str:
    """The same s3:// replica URL with its endpoint swapped for the proxy's."""
    return re.sub(r"endpoint=[^&]+", f"endpoint={proxy.url}", url)
