"""`import litestream_vfs` registers the VFS and loads nothing heavy; public names load on use.

Each check runs in a fresh interpreter: this test process has long since imported everything.
The bound is on what gets loaded (a count, not a clock); benchmarks/startup.py has the times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import litestream_vfs

REPO = Path(__file__).resolve().parents[1]
#: What `import litestream_vfs` may load of this package: registration and its glue only.
AT_IMPORT = {"litestream_vfs", "litestream_vfs.distribution", "litestream_vfs.errors", "litestream_vfs.sql",
             "litestream_vfs.timeparse", "litestream_vfs.vfs"}
#: Never loaded by the import (some modules named here do not exist yet: they must stay lazy too).
HEAVY = ("apsw.ext", "apsw.shell", "boto3", "botocore", "dateparser", "fsspec", "pandas",
         "pyarrow", "litestream_vfs.changes", "litestream_vfs.notebook", "litestream_vfs.shell",
         "litestream_vfs.cli", "litestream_vfs.hydrate", "litestream_vfs.process",
         "litestream_vfs.storage.s3", "litestream_vfs.storage.fsspec_store",
         "litestream_vfs.storage.webdav", "litestream_vfs.dbapi", "litestream_vfs.arrow",
         "litestream_vfs.fleet")


def loaded_after(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; what it prints after `modules()`."""
    script = ("import json, sys\n"
              "def modules():\n"
              "    return sorted(sys.modules)\n" + code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_import_registers_the_vfs_and_loads_nothing_heavy():
    out = loaded_after("import apsw, litestream_vfs\n"
                       "print(json.dumps({'modules': modules(), 'vfs': apsw.vfs_names()}))")
    ours = {m for m in out["modules"] if m.startswith("litestream_vfs")}
    assert ours <= AT_IMPORT, f"{sorted(ours - AT_IMPORT)} load at import: add them to LAZY instead"
    assert not [m for m in HEAVY if m in out["modules"]]
    assert litestream_vfs.VFS_NAME in out["vfs"]


def test_a_plain_connection_loads_no_replica_machinery():
    out = loaded_after("import apsw, litestream_vfs\n"
                       "apsw.Connection(':memory:').execute('select 1').fetchall()\n"
                       "print(json.dumps({'modules': modules()}))")
    assert not [m for m in ("boto3", "apsw.ext", "litestream_vfs.changes", "litestream_vfs.process")
                if m in out["modules"]]


def test_opening_a_file_replica_loads_no_s3_client_nor_dateparser(file_replica):
    out = loaded_after("import litestream_vfs\n"
                       "conn = litestream_vfs.connect(sys.argv[1], time='2100-01-01T00:00:00Z')\n"
                       "conn.execute('select count(*) from sqlite_master').fetchall()\n"
                       "print(json.dumps({'modules': modules()}))", file_replica.url)
    assert not [m for m in ("boto3", "botocore", "dateparser", "litestream_vfs.hydrate",
                            "litestream_vfs.changes", "litestream_vfs.notebook") if m in out["modules"]]


@pytest.mark.parametrize("name", sorted(litestream_vfs.LAZY))
def test_lazy_names_resolve_to_their_objects(name):
    import importlib

    module, attribute = litestream_vfs.LAZY[name]
    loaded = importlib.import_module(f"litestream_vfs.{module}")
    assert getattr(litestream_vfs, name) is (getattr(loaded, attribute) if attribute else loaded)
    assert name in dir(litestream_vfs)


def test_every_public_name_exists():
    missing = [name for name in litestream_vfs.__all__ if not hasattr(litestream_vfs, name)]
    assert not missing


def test_a_public_name_wins_over_its_submodule():
    """`litestream_vfs.changes` is the function even when the submodule `changes` loads first."""
    out = loaded_after("import litestream_vfs.changes, litestream_vfs.connect\n"
                       "import litestream_vfs as p\n"
                       "print(json.dumps({'changes': p.changes.__name__, 'connect': p.connect.__name__,"
                       " 'module': type(p.changes).__name__}))")
    assert out == {"changes": "change_log", "connect": "connect", "module": "function"}


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        litestream_vfs.no_such_name  # noqa: B018
