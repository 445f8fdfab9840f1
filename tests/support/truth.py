"""Comparing what a connection reads with ground truth: every table, row by row."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import apsw

from .proxy import Proxy

import litestream_vfs


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


def assert_steps_read_like_restore(url: str, step_txids: Iterable[tuple[str, int]],
                                   restore_to: Callable[[Path, int], object], workdir: Path,
                                   tables: Sequence[str]) -> None:
    """Through the VFS at each step's TXID, `tables` hold exactly what `restore_to(path, txid)`
    (the real `litestream restore`) writes."""
    db = litestream_vfs.connect(url)
    try:
        for name, txid in step_txids:
            truth_path = workdir / f"{txid}.db"
            restore_to(truth_path, txid)
            truth = apsw.Connection(str(truth_path), flags=apsw.SQLITE_OPEN_READONLY)
            db.execute(f"PRAGMA litestream_txid='{txid:016x}'")
            assert db.execute("PRAGMA litestream_txid").fetchone()[0] == f"{txid:016x}"
            for table in tables:
                query = f"SELECT * FROM {table} ORDER BY rowid"
                assert db.execute(query).fetchall() == truth.execute(query).fetchall(), (name, table)
            truth.close()
    finally:
        db.close()
