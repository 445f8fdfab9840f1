"""Soak against a live Litestream writer (issue 14; opt-in: pytest -m slow).

A follower at `latest`, a holder pinning states whose L0 files retention later
deletes, and a traveller jumping by TXID and time read while real Litestream
0.5.17 replicates about five transactions a second, to a directory and to S3
(SeaweedFS), and compacts every 10 s.
Passes with no error, every sampled answer equal to `litestream restore` of its
TXID, and reader RSS at the end within 10 % of RSS at minute 5 (mid-run when
shorter). LITESTREAM_VFS_SOAK_SECONDS sets the length (default 3 minutes);
benchmarks/soak.py runs it for 30 minutes and records the figures.
"""

from __future__ import annotations

import os

import pytest

from support.soak import run_soak

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_soak_against_a_live_writer(tmp_path, request, backend):
    seconds = float(os.environ.get("LITESTREAM_VFS_SOAK_SECONDS", "180"))
    server = request.getfixturevalue("seaweedfs") if backend == "s3" else None
    result = run_soak(tmp_path, seconds, server=server)
    print(f"\nsoak: {result.transactions} transactions, queries {result.queries}, "
          f"{result.comparisons} comparisons ({result.unchecked} unchecked), {result.gone} gone, "
          f"{result.l0_files_deleted} L0 files deleted, RSS {result.rss_mb}, errors {result.error_messages}")
    assert result.failures() == []
