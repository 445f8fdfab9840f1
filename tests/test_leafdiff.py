"""Partitions of the rowid space into untouched subtrees and the ranges where two states disagree."""

from __future__ import annotations

from litestream_vfs.leafdiff import Segment, dirty_ranges, union


def test_union_merges_overlaps_and_unbounded_ends() -> None:
    assert union([(10, 20), (None, 5), (15, 30), (40, None)]) == [(None, 5), (10, 30), (40, None)]
    assert union([(1, 2), (2, 3)]) == [(1, 3)]
    assert union([]) == []


def test_same_clean_subtrees_are_not_dirty() -> None:
    old = [Segment(None, 100, 7, True), Segment(100, 200, 8, False), Segment(200, None, 9, True)]
    new = [Segment(None, 100, 7, True), Segment(100, 150, 8, False), Segment(150, 200, 12, False),
           Segment(200, None, 9, True)]
    assert dirty_ranges(old, new) == [(100, 200)]


def test_a_subtree_routed_elsewhere_is_dirty_where_the_routes_differ() -> None:
    old = [Segment(None, 100, 7, True), Segment(100, None, 9, True)]
    new = [Segment(None, 120, 7, True), Segment(120, None, 9, True)]
    assert dirty_ranges(old, new) == [(100, 120)]
    assert dirty_ranges(old, old) == []
    assert dirty_ranges([Segment(None, None, 3, False)], [Segment(None, None, 3, True)]) == [(None, None)]
