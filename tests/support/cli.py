"""Running the `litestream-vfs` command line as a real subprocess, and what its errors must look like."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .replicas import ReplicaFixture


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m litestream_vfs.cli ARGS`; `env` replaces the environment when given."""
    return subprocess.run([sys.executable, "-m", "litestream_vfs.cli", *args], capture_output=True, text=True,
                          env=env if env is not None else os.environ.copy(), cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)



def history(fixture: ReplicaFixture) -> list[dict]:
    result = cli("history", fixture.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess, *culprits: str) -> None:
    """Exit 1, exactly one stderr line naming every culprit, no traceback, nothing on stdout."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("litestream-vfs: error: ")
    for culprit in culprits:
        assert culprit in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
