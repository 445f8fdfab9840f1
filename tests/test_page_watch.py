"""The next state whose files wrote a watched page, found through coarse files first."""

from __future__ import annotations

from support.incidents import IncidentReplica

from litestream_vfs.connect import open_replica
from litestream_vfs.page_watch import PageWatch, Touch, page1_meaning


def test_page1_meaning_ignores_counters_size_and_freelist() -> None:
    page = bytes(range(256)) * 16
    moved = bytearray(page)
    moved[24:40] = bytes(16)
    moved[92:100] = bytes(8)
    assert page1_meaning(bytes(moved)) == page1_meaning(page)
    moved[40] ^= 1  # the schema cookie
    assert page1_meaning(bytes(moved)) != page1_meaning(page)


def test_next_touch_is_the_first_level0_file_writing_the_page(incident_replica: IncidentReplica) -> None:
    replica = open_replica(incident_replica.url)
    states = list(replica.chains_for().states)
    level0 = sorted((o for o in replica.files if o.level == 0 and o.min_txid > 1), key=lambda o: o.max_txid)
    metas = {o.max_txid: m for o, m in zip(level0, replica.metas(level0))}
    indexes = {t: set(m.tail.index) for t, m in metas.items()}
    checked = 0
    for start in range(len(states) - 1):
        later = [t for t in states[start + 1:]]
        for page in sorted({p for t in later for p in indexes[t] if p != 1})[::7]:
            watch = PageWatch(replica, states)
            touch = watch.next_touch(start, replica.state(states[start]), {page})
            first = next(t for t in later if page in indexes[t] or page > metas[t].header.commit)
            assert touch is not None and states[touch.index] == first and touch.since is None
            checked += 1
    assert checked > 50
    whole = PageWatch(replica, states)
    assert whole.next_touch(0, replica.state(states[0]), {10**6}) is not None, "pages past the end count as written"


def test_cover_prefers_compacted_files(incident_replica: IncidentReplica) -> None:
    replica = open_replica(incident_replica.url)
    states = list(replica.chains_for().states)
    watch = PageWatch(replica, states)
    tiles = watch.cover(states[1], states[-1], None)
    assert tiles is not None and tiles[-1].max_txid == states[-1]
    assert all(b.min_txid - 1 == a.max_txid for a, b in zip(tiles, tiles[1:]))
    assert any(t.level > 0 for t in tiles) and len(tiles) < len(states) - 1


def test_only_compacted_files_left_gives_a_range(incident_replica: IncidentReplica) -> None:
    compacted = incident_replica.without_level0()
    replica = open_replica(compacted.url)
    states = list(replica.chains_for().states)
    assert all(o.level > 0 for o in replica.files)
    watch = PageWatch(replica, states)
    for start in range(len(states) - 1):
        state = replica.state(states[start])
        touch = watch.next_touch(start, state, set(range(2, state.commit + 1)))
        gap = states[start + 1] - states[start] > 1
        assert touch == Touch(start + 1, states[start] + 1 if gap else None)
    assert any(b - a > 1 for a, b in zip(states, states[1:])), "compacted files span several transactions"
