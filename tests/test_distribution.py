"""Our distribution name and version, and clear errors when Litestream's Go VFS wheel is around.

The Go wheel (`litestream-vfs` on the package index) also installs a package named
`litestream_vfs`. Its real files (from `pip download`) are laid out here the ways an
environment ends up holding both: on the path beside ours, or merged into one
directory the way pip installs the second over the first.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from litestream_vfs.distribution import GO_WHEEL, NAME
from support.binaries import go_vfs_package

REPO = Path(__file__).resolve().parents[1]
REMEDY = f"pip uninstall -y {GO_WHEEL} {NAME}"


def python(*args: str, path: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    """Run Python with `path` first on sys.path (ahead of the editable install), from an empty `cwd`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)


def merged(tmp_path: Path, go_package: Path, *, go_last: bool) -> Path:
    """A site directory holding both packages' files in one `litestream_vfs`, as pip leaves it."""
    site = tmp_path / "site-packages"
    target = site / "litestream_vfs"
    shutil.copytree(REPO / "litestream_vfs", target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "litestream-vfs.so").symlink_to((go_package / "litestream_vfs" / "litestream-vfs.so").resolve())
    if go_last:
        shutil.copyfile(go_package / "litestream_vfs" / "__init__.py", target / "__init__.py")
    return site


@pytest.fixture(scope="module")
def go_package() -> Path:
    return go_vfs_package()


def test_distribution_name_version_and_console_script(tmp_path):
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^name = "([^"]+)"$', pyproject, re.MULTILINE).group(1) == NAME != GO_WHEEL
    assert re.search(r'^litestream-vfs = "litestream_vfs.cli:main"$', pyproject, re.MULTILINE)
    result = python("-m", "litestream_vfs.cli", "--version", path=[REPO], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"litestream-vfs {importlib.metadata.version(NAME)} ({NAME})\n"


def test_go_wheel_elsewhere_on_the_path_is_named_when_ours_is_imported(tmp_path, go_package):
    result = python("-c", "import litestream_vfs", path=[REPO, go_package], cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"ImportError: {NAME} (this litestream_vfs) found Litestream's Go VFS wheel `{GO_WHEEL}`")
    assert str(go_package / "litestream_vfs") in last and REMEDY in last


def test_ours_installed_over_the_go_wheel_is_refused(tmp_path, go_package):
    site = merged(tmp_path, go_package, go_last=False)
    result = python("-c", "import litestream_vfs", path=[site], cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert f"found Litestream's Go VFS wheel `{GO_WHEEL}`" in last
    assert str(site / "litestream_vfs") in last and REMEDY in last


@pytest.mark.parametrize("name", ["load", "loadable_path"])
def test_asking_ours_for_the_go_wheels_api_says_which_package_this_is(tmp_path, name):
    result = python("-c", f"import litestream_vfs; litestream_vfs.{name}", path=[REPO], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"AttributeError: module 'litestream_vfs' has no attribute {name!r}: this litestream_vfs is {NAME} "
        f"(an APSW VFS), not Litestream's Go VFS wheel `{GO_WHEEL}`; " + result.stderr.split("`; ", 1)[1].strip())
    assert REMEDY in result.stderr
    other = python("-c", "import litestream_vfs; litestream_vfs.nope", path=[REPO], cwd=tmp_path)
    assert other.stderr.splitlines()[-1] == "AttributeError: module 'litestream_vfs' has no attribute 'nope'"


def test_go_wheel_installed_over_ours_is_named_by_our_modules_and_cli(tmp_path, go_package):
    site = merged(tmp_path, go_package, go_last=True)
    expected = (f"the litestream_vfs package imported from {site / 'litestream_vfs'} is Litestream's Go VFS "
                f"wheel `{GO_WHEEL}`, so {NAME}'s modules cannot run")

    result = python("-c", "from litestream_vfs.notebook import read_sql", path=[site], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"ImportError: {expected}; " + result.stderr.split("; ", 1)[1].strip()
    assert REMEDY in result.stderr

    cli = python("-m", "litestream_vfs.cli", "history", str(tmp_path), path=[site], cwd=tmp_path)
    assert cli.returncode == 1
    assert cli.stderr.splitlines() == [f"litestream-vfs: error: {expected}; " + cli.stderr.split("; ", 1)[1].strip()]
    assert REMEDY in cli.stderr
