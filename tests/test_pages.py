"""Page maps of real Litestream states: incremental layers equal a plain merge, at any history."""

from __future__ import annotations

import pytest

from litestream_vfs import pages
from litestream_vfs.connect import open_replica
from litestream_vfs.pages import FileLayer, PageMap, locations


def naive_map(metas, commit: int) -> dict:
    merged: dict = {}
    for meta in metas:
        merged.update(locations(meta))
    return {pgno: loc for pgno, loc in merged.items() if pgno <= commit}


@pytest.mark.parametrize("own_layer_pages", [pages.OWN_LAYER_PAGES, 2], ids=["default", "files-as-layers"])
def test_page_maps_built_state_after_state_equal_a_plain_merge(file_replica, monkeypatch, own_layer_pages):
    """Follow the L0 chain one file at a time (as a follower does): every map, built on the
    previous one, holds exactly the pages a plain merge of its whole plan holds; also when
    most files are large enough to be layers of their own (and the layers must be merged)."""
    monkeypatch.setattr(pages, "OWN_LAYER_PAGES", own_layer_pages)
    replica = open_replica(file_replica.url)
    level0 = sorted((o for o in replica.files if o.level == 0), key=lambda o: o.min_txid)
    assert level0[0].min_txid == 1 and len(level0) > 10
    metas = replica.metas(level0)
    previous = None
    depths = []
    for i, meta in enumerate(metas):
        commit = meta.header.commit
        built = PageMap.build([meta], commit, previous)
        expected = naive_map(metas[:i + 1], commit)
        assert dict(built.items()) == expected, f"after {meta.obj}"
        assert all(built.get(p) is None for p in range(commit + 1, commit + 50))
        depths.append(built.depth)
        previous = built
    assert max(depths) <= max(1 + len(metas).bit_length(), pages.MAX_LAYERS)  # few probes a lookup


def test_a_large_file_is_a_layer_of_its_own_never_copied(file_replica, monkeypatch):
    """A snapshot's pages are found through its index (16 bytes a page), not a dict of its pages."""
    replica = open_replica(file_replica.url)
    snapshot = replica.metas([min(replica.files, key=lambda o: (o.min_txid, -o.max_txid))])[0]
    monkeypatch.setattr(pages, "OWN_LAYER_PAGES", len(snapshot.tail.index))
    built = PageMap.build([snapshot], snapshot.header.commit)
    assert [type(layer) for layer in built._layers] == [FileLayer]
    assert dict(built.items()) == naive_map([snapshot], snapshot.header.commit)


def test_a_new_state_shares_the_previous_layers():
    """Cost per new state: its own pages only; the layers below are the same objects."""
    replica_pages = {p: ("base", p) for p in range(1, 10_001)}
    base = PageMap((replica_pages,), 10_000, 10_000)
    small = PageMap.build([], 10_000, base)
    assert small._layers[0] is replica_pages  # shared, not copied


def test_a_shrunk_database_drops_pages_beyond_its_end(file_replica):
    replica = open_replica(file_replica.url)
    chains = replica.chains_for()
    vacuum = dict(file_replica.step_txids)["vacuum"]
    before = chains.states[chains.states.index(vacuum) - 1]
    grown = replica.page_map(replica.state(before))
    shrunk = replica.page_map(replica.state(vacuum))
    assert shrunk.commit < grown.commit
    assert max(shrunk) <= shrunk.commit and len(shrunk) <= shrunk.commit
    assert dict(shrunk.items()) == naive_map(replica.metas(chains.plan(vacuum)), shrunk.commit)


def test_frame_table_ranges_split_between_frames(file_replica):
    replica = open_replica(file_replica.url)
    meta = max(replica.metas(list(replica.chains_for().plan(replica.chains_for().latest))),
               key=lambda m: len(m.tail.index))
    table = meta.table
    assert meta.table is table  # built once per file, released with its metadata
    first, second = table.offsets[0], table.offsets[1]
    assert table.align(second - 1) == first and table.align(second) == second
    assert list(table.span(first, second + table.sizes[1])) == [0, 1]
    assert table.pgno_at(second) == table.pgnos[1]
