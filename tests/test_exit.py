"""A script that exits with connections still open (a notebook, a quick script) exits
quietly: the VFS closes them without a traceback during interpreter shutdown (it printed
a ModuleNotFoundError when ReplicaFile.xClose imported litestream_vfs.process then)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from litestream_vfs.connect import connect
import boto3  # a library imported after the VFS: module teardown then runs before the connections close
following, pinned = connect(sys.argv[1]), connect(sys.argv[1], txid=sys.argv[2])
for connection in (following, pinned):
    connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
"""


def test_exit_with_open_connections_is_quiet(file_replica):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    first = f"{file_replica.litestream_txids()[0]:016x}"
    result = subprocess.run([sys.executable, "-c", SCRIPT, file_replica.url, first], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
