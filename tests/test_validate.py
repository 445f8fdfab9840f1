"""`validate` on real replicas: every file read in full once, every damaged one named, any pool size."""

from __future__ import annotations

import shutil

from litestream_vfs.executors import Executors
from litestream_vfs.pagecache import PageCache
from litestream_vfs.replica import Replica
from litestream_vfs.storage.file import FileStorage
from litestream_vfs.validate import validate
from support.corrupt import flip_page_body
from support.threads import run_threads


def test_validate_checks_every_file_and_names_each_altered_one_with_tiny_pools(file_replica, tmp_path):
    root = tmp_path / "replica"
    shutil.copytree(file_replica.url, root, ignore=shutil.ignore_patterns("*.tmp"))
    files = sorted((root / "ltx").glob("*/*.ltx"), key=lambda p: p.stat().st_size)
    altered = [files[-1], files[len(files) // 2]]  # the largest (read by ranges) and a middling one
    for path in altered:
        flip_page_body(path)
    pools = Executors(io=1, tasks=1, prefetch=1)
    try:
        replica = Replica(FileStorage(str(root)), PageCache(1 << 20), pools)
        lines: list[str] = []
        report, = run_threads([lambda: validate(replica, lines.append)], timeout=120)
    finally:
        assert pools.shutdown(10) == []
    assert report.files_checked == len(files) and report.bytes_checked == sum(p.stat().st_size for p in files)
    failed = [line for line in lines if line.startswith("FAIL") and not line.startswith("FAIL plan")]
    assert len(failed) == len(altered)  # exactly the altered files, each named
    assert all(any(path.name in line for line in failed) for path in altered)
    assert not report.ok
