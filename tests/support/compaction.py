"""Editing a copy of a real replica the way compaction and retention change it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from litestream_vfs.ltx import decode_file
from litestream_vfs.storage.base import parse_ltx_name


def l0_run_covered_by_l1(root: Path) -> tuple[int, int]:
    """An L1 file's span [lo, hi] whose every TXID has its own L0 file."""
    l0 = {parse_ltx_name(p.name) for p in (root / "ltx" / "0").glob("*.ltx")}
    for path in sorted((root / "ltx" / "1").glob("*.ltx")):
        lo, hi = parse_ltx_name(path.name)
        if lo > 1 and all((t, t) in l0 for t in range(lo, hi + 1)) and hi > lo:
            return lo, hi
    raise AssertionError(f"no L1 file of {root} has a full run of L0 files")


def state_only_l0_restores(root: Path, first_read_removed: bool = False) -> tuple[int, int, int]:
    """(lo, hi, txid): an L1 file's span [lo, hi] with a full run of L0 files, and a TXID in it
    that no compacted file ends at, so deleting the run leaves that state unrestorable.

    `first_read_removed`: also page 1 of that state (SQLite's first read of a transaction)
    comes from the run, so a read of the state fails before SQLite got any answer.
    """
    compacted_ends = {parse_ltx_name(p.name)[1] for p in (root / "ltx").glob("*/*.ltx") if p.parent.name != "0"}
    l0 = {parse_ltx_name(p.name) for p in (root / "ltx" / "0").glob("*.ltx")}

    def page1_from_run(lo: int, txid: int) -> bool:
        return any(1 in decode_file(path.read_bytes(), path.name).pages
                   for path in (root / "ltx" / "0" / f"{t:016x}-{t:016x}.ltx" for t in range(lo, txid + 1)))

    for path in sorted((root / "ltx" / "1").glob("*.ltx")):
        lo, hi = parse_ltx_name(path.name)
        if lo == 1 or not all((t, t) in l0 for t in range(lo, hi + 1)):
            continue
        inside = [t for t in range(lo, hi) if t not in compacted_ends
                  and (not first_read_removed or page1_from_run(lo, t))]
        if inside:
            return lo, hi, inside[0]
    raise AssertionError(f"no L1 file of {root} has a run of L0 files with a state only they restore")


def delete_l0_run(root: Path, lo: int, hi: int) -> None:
    """Retention: the L0 files of TXIDs lo..hi are deleted."""
    for txid in range(lo, hi + 1):
        (root / "ltx" / "0" / f"{txid:016x}-{txid:016x}.ltx").unlink()


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
