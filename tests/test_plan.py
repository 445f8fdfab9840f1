"""The restore plan: which chains of files rebuild which states."""

from __future__ import annotations

import random

from litestream_vfs.plan import build_chains
from litestream_vfs.storage.base import LtxObject


def obj(level: int, lo: int, hi: int, size: int = 100) -> LtxObject:
    return LtxObject(level, lo, hi, size)


def is_contiguous(plan: tuple[LtxObject, ...]) -> bool:
    return plan[0].min_txid == 1 and all(a.max_txid + 1 == b.min_txid for a, b in zip(plan, plan[1:]))


def test_every_l0_state_is_restorable_through_a_contiguous_chain():
    files = [obj(0, t, t) for t in range(1, 8)]
    chains = build_chains(files)
    assert chains.states == tuple(range(1, 8))
    for txid in chains.states:
        plan = chains.plan(txid)
        assert is_contiguous(plan) and plan[-1].max_txid == txid


def test_compacted_files_shorten_the_chain_and_snapshot_starts_it():
    files = [obj(0, t, t) for t in range(1, 11)] + [obj(1, 1, 4), obj(1, 5, 8), obj(9, 1, 6, size=10_000)]
    chains = build_chains(files)
    assert chains.plan(8) == (obj(1, 1, 4), obj(1, 5, 8))
    assert chains.plan(10) == (obj(1, 1, 4), obj(1, 5, 8), obj(0, 9, 9), obj(0, 10, 10))
    assert chains.plan(6) == (obj(9, 1, 6, size=10_000),)


def test_a_gap_stops_the_history_until_a_later_snapshot():
    files = [obj(0, 1, 1), obj(0, 2, 2), obj(0, 4, 4), obj(0, 5, 5), obj(9, 1, 4)]
    chains = build_chains(files)
    assert chains.states == (1, 2, 4, 5)
    assert 3 not in chains
    assert chains.plan(5) == (obj(9, 1, 4), obj(0, 5, 5))


def test_states_inside_a_compacted_range_are_not_restorable():
    chains = build_chains([obj(9, 1, 1), obj(1, 2, 9)])
    assert chains.states == (1, 9)
    assert chains.finest(9) == obj(1, 2, 9)


def test_finest_prefers_the_lowest_level_that_ends_at_the_state():
    chains = build_chains([obj(9, 1, 5), obj(1, 1, 5), obj(0, 5, 5), obj(0, 1, 4)])
    assert chains.finest(5) == obj(0, 5, 5)


def test_ties_prefer_more_compacted_files():
    chains = build_chains([obj(0, 1, 1), obj(1, 1, 1), obj(0, 2, 2)])
    assert chains.plan(2) == (obj(1, 1, 1), obj(0, 2, 2))


def test_no_snapshot_means_no_state():
    chains = build_chains([obj(0, 2, 2), obj(0, 3, 3)])
    assert chains.states == () and chains.latest is None


def test_random_listings_always_give_contiguous_minimal_plans():
    rng = random.Random(7)
    for _ in range(200):
        top = rng.randint(1, 40)
        files = {obj(0, t, t) for t in range(1, top + 1) if rng.random() < 0.9}
        for _ in range(rng.randint(0, 6)):
            lo = rng.randint(1, top)
            files.add(obj(rng.choice((1, 2, 9)), 1 if rng.random() < 0.3 else lo, rng.randint(lo, top)))
        chains = build_chains(files)
        for txid in chains.states:
            plan = chains.plan(txid)
            assert is_contiguous(plan) and plan[-1].max_txid == txid
            assert set(plan) <= files
        # every reachable state is found: brute force by reachability
        reachable = {0}
        for f in sorted(files, key=lambda f: f.max_txid):
            if f.min_txid - 1 in reachable:
                reachable.add(f.max_txid)
        assert set(chains.states) == reachable - {0}
