"""The change log and row diffs, checked against real `litestream restore` outputs."""

from __future__ import annotations

from pathlib import Path

import apsw
from support.replicas import ReplicaFixture, step

import litestream_vfs
from litestream_vfs.changes import FREE, OwnerMaps
from litestream_vfs.connect import open_replica


def read_only(path: Path) -> apsw.Connection:
    return apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def pages_of(path: Path) -> dict[int, bytes]:
    data = path.read_bytes()
    size = int.from_bytes(data[16:18], "big") or 65536
    return {i // size + 1: data[i:i + size] for i in range(0, len(data), size)}


def owners_of(path: Path) -> dict[int, str]:
    return dict(read_only(path).execute("SELECT pageno, name FROM dbstat"))



def test_log_names_the_btrees_each_transaction_changed(file_replica: ReplicaFixture) -> None:
    """Expected names: pages whose bytes differ between two restores, named by dbstat there."""
    replica = open_replica(file_replica.url)
    chains = replica.chains_for()
    maps = OwnerMaps(file_replica.url, replica)
    log = {c.txid: c for c in litestream_vfs.changes(file_replica.url, maps=maps)}
    assert list(log) == list(chains.states)
    assert maps.dbstat_runs < len(log), "neighbouring states with leaf-only changes reuse the map"
    steps = [txid for _, txid in file_replica.step_txids]
    for before, after in zip(steps, steps[1:]):
        entry = log[after]
        assert (entry.level, entry.min_txid, entry.coarse) == (0, after, False)
        if after - 1 != before:
            continue  # the step shipped as several files: compare single transactions only
        old, new = file_replica.restore(before), file_replica.restore(after)
        old_pages, new_pages = pages_of(old), pages_of(new)
        differ = {p for p, data in new_pages.items() if old_pages.get(p) != data and p != 1}
        new_owner, old_owner = owners_of(new), owners_of(old)
        (meta,) = replica.metas([chains.finest(after)])
        assert differ <= set(meta.tail.index), f"TXID {after:x}: a changed page is missing from its file"
        named = {p: new_owner.get(p) or old_owner.get(p) or FREE for p in meta.tail.index}
        expected = {name: list(named.values()).count(name) for name in set(named.values())}
        assert entry.tables == expected, f"TXID {after:x}"
        assert {named[p] for p in differ} <= set(entry.tables)


def test_log_filters_by_table_and_names_dropped_tables(file_replica: ReplicaFixture) -> None:
    url = file_replica.url
    touched = [c.txid for c in litestream_vfs.changes(url, table="Genre")]
    assert step(file_replica, "insert genre") in touched
    assert step(file_replica, "insert artists") not in touched
    dropped = next(c for c in litestream_vfs.changes(url, since=step(file_replica, "drop audit table"),
                                                      until=step(file_replica, "drop audit table")))
    assert "audit_log" in dropped.tables, "freed pages are named after the dropped table"
