"""Editing a copy of a real replica the way compaction and retention change it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from litestream_vfs.storage.base import parse_ltx_name


def l0_run_covered_by_l1(root: Path) -> tuple[int, int]:
    """An L1 file's span [lo, hi] whose every TXID has its own L0 file."""
    l0 = {parse_ltx_name(p.name) for p in (root / "ltx" / "0").glob("*.ltx")}
    for path in sorted((root / "ltx" / "1").glob("*.ltx")):
        lo, hi = parse_ltx_name(path.name)
        if lo > 1 and all((t, t) in l0 for t in range(lo, hi + 1)) and hi > lo:
            return lo, hi
    raise AssertionError(f"no L1 file of {root} has a full run of L0 files")


def hide(root: Path, keep: Callable[[int, int, int], bool]) -> dict[Path, Path]:
    """Move aside every file of level >= 1 for which keep() is false; returns moves to undo."""
    moved = {}
    for path in (root / "ltx").glob("*/*.ltx"):
        level = int(path.parent.name)
        if level >= 1 and not keep(level, *parse_ltx_name(path.name)):
            aside = path.with_name(path.name + ".hidden")
            path.rename(aside)
            moved[aside] = path
    return moved


def hide_compacted_from(root: Path, lo: int) -> dict[Path, Path]:
    """Move aside every file of level >= 1 that ends at or after `lo` (so plans use L0 files)."""
    return hide(root, lambda level, a, b: b < lo)
