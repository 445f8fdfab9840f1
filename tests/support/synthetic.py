"""Synthetic replicas for targeted cases real Litestream does not produce quickly
(odd page sizes, a database past the 1 GiB lock page, corruption).

The database states are real SQLite files made with APSW; only the LTX
packaging is ours (litestream_vfs.ltx.encode_file), one file per state with the
pages that changed, so the replica has the exact shape Litestream writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from litestream_vfs import ltx

BASE_MS = 1_790_000_000_000


def db_pages(path: Path, page_size: int) -> dict[int, bytes]:
    data = path.read_bytes()
    return {i // page_size + 1: data[i:i + page_size] for i in range(0, len(data), page_size)}


@dataclass(frozen=True)
class SyntheticReplica:
    root: Path
    page_size: int
    #: txid -> the database pages of that state
    states: Mapping[int, Mapping[int, bytes]]
    timestamps_ms: Mapping[int, int]


def write_replica(root: Path, states: Sequence[Mapping[int, bytes]], page_size: int, *,
                  flavour: str = "block", step_ms: int = 1000, level: int = 0) -> SyntheticReplica:
    """One LTX file per state (the first a full snapshot), each holding only the changed pages."""
    directory = root / "ltx" / str(level)
    directory.mkdir(parents=True, exist_ok=True)
    forbidden = ltx.lock_page(page_size)
    previous: Mapping[int, bytes] = {}
    recorded: dict[int, Mapping[int, bytes]] = {}
    stamps: dict[int, int] = {}
    for txid, pages in enumerate(states, start=1):
        changed = {p: b for p, b in pages.items() if previous.get(p) != b and p != forbidden}
        header = ltx.Header(flags=ltx.FLAG_NO_CHECKSUM, page_size=page_size, commit=max(pages),
                            min_txid=txid, max_txid=txid, timestamp_ms=BASE_MS + txid * step_ms)
        (directory / f"{txid:016x}-{txid:016x}.ltx").write_bytes(ltx.encode_file(header, changed, flavour=flavour))
        recorded[txid] = dict(pages)
        stamps[txid] = header.timestamp_ms
        previous = pages
    return SyntheticReplica(root, page_size, recorded, stamps)


def sqlite_states(workdir: Path, page_size: int, statements: Sequence[str]) -> list[dict[int, bytes]]:
    """Run each statement on a fresh rollback-journal database and capture the pages after it."""
    import apsw

    path = workdir / f"source-{page_size}.db"
    if path.exists():
        os.unlink(path)
    connection = apsw.Connection(str(path))
    connection.execute(f"PRAGMA page_size={page_size}; PRAGMA journal_mode=delete")
    states = []
    for sql in statements:
        connection.execute(sql)
        states.append(db_pages(path, page_size))
    connection.close()
    return states
