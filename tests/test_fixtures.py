"""Sanity checks of the real-component fixtures that every other test builds on."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import apsw
from support.binaries import LITESTREAM_VERSIONS, go_vfs_extension
from support.replicas import ReplicaFixture
from support.workload import STEPS

LTX_HEADER = struct.Struct(">4sIIIQQq")  # magic, flags, page_size, commit, min, max, timestamp
LZ4_FRAME_MAGIC = bytes.fromhex("04224d18")


def read_only(path: Path) -> apsw.Connection:
    return apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY
                           | apsw.SQLITE_OPEN_URI)


def contents(path: Path) -> dict[str, list[tuple]]:
    """Schema and every table's rows, in a comparable form."""
    conn = read_only(path)
    try:
        schema = sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        tables = [name for kind, name, _, _ in schema if kind == "table"]
        found = {"sqlite_master": schema}
        for table in tables:
            found[table] = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
        return found
    finally:
        conn.close()


def scalar(path: Path, sql: str):
    conn = read_only(path)
    try:
        return conn.execute(sql).fetchall()[0][0]
    finally:
        conn.close()


def step_txid(replica: ReplicaFixture, name: str) -> int:
    return dict(replica.step_txids)[name]


def header_of(replica: ReplicaFixture, key: str) -> tuple:
    if replica.backend == "file":
        data = (Path(replica.url) / key).read_bytes()[:LTX_HEADER.size]
    else:
        client = replica.location.server.boto3_client()
        data = client.get_object(Bucket=replica.location.server.bucket, Key=key,
                                 Range=f"bytes=0-{LTX_HEADER.size - 1}")["Body"].read()
    return LTX_HEADER.unpack(data)


def test_litestream_binaries_report_their_version(litestream_bin):
    for version in LITESTREAM_VERSIONS:
        out = subprocess.run([litestream_bin(version), "version"], capture_output=True,
                             text=True, check=True).stdout
        assert out.strip() == version


def test_binary_cache_survives_concurrent_first_use(tmp_path):
    script = ("import sys; sys.path.insert(0, sys.argv[1]);"
              "from support.binaries import litestream_binary;"
              "print(litestream_binary('0.5.15'))")
    env = {**os.environ, "LITESTREAM_VFS_TEST_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent)],
                              env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    assert os.access(outputs[0], os.X_OK)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_go_vfs_extension_is_a_shared_object():
    assert go_vfs_extension().read_bytes()[:4] == b"\x7fELF"


def test_every_step_lands_at_its_own_txid(replica):
    names = [name for name, _ in replica.step_txids]
    txids = [txid for _, txid in replica.step_txids]
    assert names == ["initial"] + [step.name for step in STEPS]
    assert txids == sorted(set(txids))
    assert txids[-1] == max(f.max_txid for f in replica.ltx_files() if f.level == 0)


def test_replica_has_l0_and_compacted_levels(replica):
    files = replica.ltx_files()
    final = replica.step_txids[-1][1]
    by_level: dict[int, list] = {}
    for f in files:
        by_level.setdefault(f.level, []).append(f)
    assert {0, 1, 2} <= by_level.keys()
    for level in (0, 1, 2):  # each level is one contiguous run of TXIDs from 1 to the end
        spans = sorted((f.min_txid, f.max_txid) for f in by_level[level])
        assert spans[0][0] == 1 and spans[-1][1] == final
        assert all(nxt[0] == prev[1] + 1 for prev, nxt in zip(spans, spans[1:]))
    assert all(f.min_txid == 1 for f in by_level.get(9, []))
    assert replica.litestream_txids() == sorted({f.max_txid for f in files})


def test_key_layout(replica):
    """File replicas use ltx/<level>/, S3 replicas <prefix>/<level as 4 digits>/, nothing else."""
    objects = replica.location.list_objects()
    assert objects
    if replica.backend == "file":
        pattern = re.compile(r"ltx/(\d+)/([0-9a-f]{16})-([0-9a-f]{16})\.ltx")
    else:
        prefix = replica.url.split("?")[0].split("/", 3)[3]
        pattern = re.compile(re.escape(prefix) + r"/(\d{4})/([0-9a-f]{16})-([0-9a-f]{16})\.ltx")
    for key in objects:
        match = pattern.fullmatch(key)
        assert match, key
        level, min_txid, max_txid = int(match[1]), int(match[2], 16), int(match[3], 16)
        _, _, _, _, head_min, head_max, _ = header_of(replica, key)
        assert (head_min, head_max) == (min_txid, max_txid), key
        assert level in (0, 1, 2, 9), key


def test_objects_carry_header_timestamp(replica):
    """S3 objects carry it as `litestream-timestamp` metadata, files as their mtime."""
    for key in replica.location.list_objects():
        timestamp_ms = header_of(replica, key)[6]
        if replica.backend == "file":
            assert os.stat(Path(replica.url) / key).st_mtime_ns // 1_000_000 == timestamp_ms
            continue
        server = replica.location.server
        metadata = server.boto3_client().head_object(Bucket=server.bucket, Key=key)["Metadata"]
        assert metadata.keys() == {"litestream-timestamp"}, key
        # Go's RFC3339Nano: UTC "Z", trailing zeros of the fraction dropped.
        text = metadata["litestream-timestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z", text), text
        assert datetime.fromisoformat(text) == datetime.fromtimestamp(
            timestamp_ms / 1000, tz=timezone.utc), key


def test_page_encoding_matches_version(replica):
    """0.5.15 stores each page as an LZ4 frame (flags 0), 0.5.17 as a sized LZ4 block (flag 1)."""
    first_l0 = next(f for f in replica.ltx_files() if f.level == 0)
    key = next(k for k in replica.location.list_objects() if k.endswith(first_l0.name))
    if replica.backend == "file":
        data = (Path(replica.url) / key).read_bytes()[100:110]
    else:
        server = replica.location.server
        data = server.boto3_client().get_object(Bucket=server.bucket, Key=key,
                                                Range="bytes=100-109")["Body"].read()
    pgno, flags = struct.unpack(">IH", data[:6])
    assert pgno == 1
    if replica.version == "0.5.15":
        assert flags == 0 and data[6:10] == LZ4_FRAME_MAGIC
    else:
        assert flags == 1 and data[6:10] != LZ4_FRAME_MAGIC


def test_restore_latest_matches_source(replica):
    restored = replica.restore()
    assert scalar(restored, "PRAGMA integrity_check") == "ok"
    assert contents(restored) == contents(replica.db_path)
    assert replica.restore(replica.step_txids[-1][1]).read_bytes() == restored.read_bytes()


def test_restore_middle_txids(replica):
    """Restored states follow the workload: growth, then a VACUUM that shrinks the file."""
    pages = {}
    for name in ("initial", "grow bulk 2", "shrink bulk", "vacuum"):
        restored = replica.restore(step_txid(replica, name))
        assert scalar(restored, "PRAGMA integrity_check") == "ok", name
        pages[name] = scalar(restored, "PRAGMA page_count")
    assert pages["grow bulk 2"] > 4 * pages["initial"]
    assert pages["shrink bulk"] >= pages["grow bulk 2"]  # DELETE frees pages, keeps the file
    assert pages["vacuum"] < pages["shrink bulk"]
    audit = replica.restore(step_txid(replica, "fill audit table"))
    assert scalar(audit, "SELECT count(*) FROM audit_log") == 500


def test_file_replica_needs_no_s3(file_replica):
    assert file_replica.backend == "file" and file_replica.env == {}
    assert Path(file_replica.url).is_absolute()
