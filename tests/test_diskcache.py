"""The persistent cache: a second process starts warm, processes share it, size is bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from litestream_vfs.diskcache import DiskCache

QUERY_SCRIPT = r"""
import json, sys, apsw, litestream_vfs
from urllib.parse import quote
from litestream_vfs.vfs import file_of
url, cache_dir, sql = sys.argv[1:4]
c = apsw.Connection(f"file:c.db?vfs=litestream&replica={quote(url, safe='')}&cache_dir={quote(cache_dir, safe='')}",
                    flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
rows = c.execute(sql).fetchall()
print(json.dumps({"rows": rows, "counters": file_of(c).counters.snapshot()}))
"""

SQL = ("SELECT g.Name, count(*), sum(il.UnitPrice * il.Quantity) FROM InvoiceLine il "
       "JOIN Track t USING (TrackId) JOIN Genre g USING (GenreId) GROUP BY g.Name ORDER BY g.Name")


def run_query(url: str, cache_dir: Path, sql: str = SQL) -> dict:
    out = subprocess.run([sys.executable, "-c", QUERY_SCRIPT, url, str(cache_dir), sql],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def test_second_process_reads_nothing_but_the_listing(file_replica, tmp_path):
    cold = run_query(file_replica.url, tmp_path / "cache")
    warm = run_query(file_replica.url, tmp_path / "cache")
    assert cold["rows"] == warm["rows"] and cold["rows"]
    assert cold["counters"]["gets"] > 0
    assert warm["counters"]["gets"] == 0
    assert warm["counters"]["lists"] >= 1  # the listing is always fresh: new states must be seen
    assert warm["counters"]["disk_hits"] > 0


def test_concurrent_processes_share_one_cache(file_replica, tmp_path):
    script = [sys.executable, "-c", QUERY_SCRIPT, file_replica.url, str(tmp_path / "cache"), SQL]
    procs = [subprocess.Popen(script, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({json.dumps(r["rows"]) for r in results}) == 1


def test_eviction_keeps_the_cache_near_its_size(tmp_path):
    cache = DiskCache(str(tmp_path), max_bytes=2 * 1024 * 1024)
    blob = bytes(range(256)) * 64  # 16 KiB
    for n in range(400):  # 6.4 MiB offered
        cache.put_frames(f"file-{n % 7}", [(n * 100, blob)])
    cache.evict()
    assert cache.used_bytes() <= 2 * 1024 * 1024
    newest = cache.get_frames_between("file-0", 399 * 100 - 700, 399 * 100 + 1)
    assert newest and newest[-1][1] == blob  # the newest entries survive, the oldest go
    assert cache.get_frames_between("file-0", 0, 1) == []


def test_index_and_frames_round_trip(tmp_path):
    cache = DiskCache(str(tmp_path))
    cache.put_meta("s3://b/x|L0/a.ltx", b"h" * 100, b"tail")
    cache.put_frames("s3://b/x|L0/a.ltx", [(100, b"one"), (200, b"two")])
    again = DiskCache(str(tmp_path))
    assert again.get_meta("s3://b/x|L0/a.ltx") == (b"h" * 100, b"tail")
    assert again.get_frames_between("s3://b/x|L0/a.ltx", 100, 201) == [(100, b"one"), (200, b"two")]
    assert again.get_meta("s3://b/x|L0/b.ltx") is None
