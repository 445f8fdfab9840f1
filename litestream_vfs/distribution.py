"""Which distribution this is, and a clear refusal to share an environment with Litestream's Go VFS wheel.

On the package index, `litestream-vfs` is Litestream's own Go VFS (a loadable
SQLite extension) whose import name is also `litestream_vfs`. Installed in one
environment, one package's files silently replace the other's. These checks
cost a few file-system lookups, so they run on every import.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

#: Our distribution on the package index (the import name stays `litestream_vfs`).
NAME = "litestream-apsw"
#: Litestream's Go VFS wheel, which ships a `litestream_vfs` package holding one of these libraries.
GO_WHEEL = "litestream-vfs"
GO_LIBRARIES = ("litestream-vfs.so", "litestream-vfs.dylib")
#: What the Go wheel's package offers: asking ours for it means that package was expected.
GO_WHEEL_API = frozenset({"load", "loadable_path"})

_REMEDY = (f"they share the import name litestream_vfs and cannot be installed in one environment: "
           f"`pip uninstall -y {GO_WHEEL} {NAME}`, then `pip install {NAME}` (or the Go wheel alone)")


def version() -> str | None:
    """Our installed version from the package metadata (imported only when asked), None if not installed."""
    from importlib.metadata import PackageNotFoundError, version as installed_version

    try:
        return installed_version(NAME)
    except PackageNotFoundError:
        return None


def go_wheel_directory() -> str | None:
    """The `litestream_vfs` directory of the Go VFS wheel if one is importable from sys.path, else None."""
    for entry in sys.path:
        package = os.path.join(entry or os.curdir, "litestream_vfs")
        if any(os.path.isfile(os.path.join(package, library)) for library in GO_LIBRARIES):
            return os.path.abspath(package)
    return None


def refuse_go_wheel() -> None:
    """Raise ImportError if the Go VFS wheel is installed beside us (its package files are on sys.path)."""
    found = go_wheel_directory()
    if found:
        raise ImportError(f"{NAME} (this litestream_vfs) found Litestream's Go VFS wheel `{GO_WHEEL}` "
                          f"installed in the same environment ({found}); {_REMEDY}")


def missing_attribute(name: str) -> AttributeError:
    """The AttributeError for a name our package lacks; for the Go wheel's API it says which package this is."""
    message = f"module 'litestream_vfs' has no attribute {name!r}"
    if name in GO_WHEEL_API:
        message += f": this litestream_vfs is {NAME} (an APSW VFS), not Litestream's Go VFS wheel `{GO_WHEEL}`; {_REMEDY}"
    return AttributeError(message)


def refuse_foreign_package(package: ModuleType | None) -> None:
    """Raise ImportError if the imported `litestream_vfs` package is not ours (typically the Go VFS wheel's)."""
    if package is None or getattr(package, "__distribution__", None) == NAME:
        return
    where = os.path.dirname(getattr(package, "__file__", None) or "?")
    what = (f"Litestream's Go VFS wheel `{GO_WHEEL}`" if hasattr(package, "loadable_path")
            else f"not {NAME}")
    raise ImportError(f"the litestream_vfs package imported from {where} is {what}, "
                      f"so {NAME}'s modules cannot run; {_REMEDY}")
