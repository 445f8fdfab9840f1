"""`restore` writes exactly the file `litestream restore` writes, for every state of real
replicas (0.5.15 and 0.5.17, file and S3), whether a file is fetched whole or streamed in
ranges; it never overwrites, and a failed restore leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from litestream_vfs import ltx, restore as restore_module
from litestream_vfs.connect import open_replica
from litestream_vfs.errors import LitestreamVFSError
from litestream_vfs.ltx.frame import END_MARKER
from litestream_vfs.restore import restore, verified_pages

#: Small enough that the snapshot of the workload database is streamed in several ranges.
SMALL_CHUNK = 64 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_restore_is_byte_identical_to_litestream_restore_for_every_txid(replica_env, tmp_path):
    replica = open_replica(replica_env.url)
    states = replica.chains_for().states
    for txid in states:
        out = tmp_path / f"ours-{txid:016x}.db"
        restore(replica, replica.state(txid), str(out))
        assert sha256(out) == sha256(replica_env.restore(txid)), f"TXID {txid:016x}"
    print(f"{replica_env.id}: {len(states)} TXIDs byte-identical to litestream restore")


@pytest.fixture(params=["0.5.15", "0.5.17"])
def versioned_file_replica(request, replica_factory):
    """The stable file replica of each Litestream version (LZ4 frames, LZ4 blocks)."""
    return replica_factory.get(request.param, "file")


def test_streamed_files_restore_byte_identical(versioned_file_replica, tmp_path, monkeypatch):
    source = versioned_file_replica
    monkeypatch.setattr(restore_module, "CHUNK_BYTES", SMALL_CHUNK)
    replica = open_replica(source.url)
    latest = replica.latest()
    assert max(obj.size for obj in latest.plan) > 4 * SMALL_CHUNK  # the snapshot is streamed
    for txid in (source.step_txids[0][1], latest.txid):
        out = tmp_path / f"streamed-{txid:016x}.db"
        restore(replica, replica.state(txid), str(out))
        assert sha256(out) == sha256(source.restore(txid)), f"TXID {txid:016x}"


@pytest.mark.parametrize("in_flight", [0, 1, 4])
def test_verified_pages_of_a_streamed_file_equal_the_whole_file(versioned_file_replica, monkeypatch, in_flight):
    monkeypatch.setattr(restore_module, "CHUNK_BYTES", SMALL_CHUNK)
    replica = open_replica(versioned_file_replica.url)
    snapshot = max(replica.latest().plan, key=lambda obj: obj.size)
    whole = ltx.decode_file(replica.read_object(snapshot), str(snapshot))
    streamed = list(verified_pages(replica, snapshot, (), in_flight))
    assert [pgno for pgno, _ in streamed] == list(whole.tail.index)
    assert dict(streamed) == whole.pages


def test_progress_counts_every_planned_byte(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    state = replica.latest()
    reports: list[tuple[int, int]] = []
    restore(replica, state, str(tmp_path / "out.db"), progress=lambda done, total: reports.append((done, total)))
    total = sum(obj.size for obj in state.plan)
    assert len(reports) == len(state.plan)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
    assert reports[-1] == (total, total) and {t for _, t in reports} == {total}


def test_an_existing_output_is_never_overwritten(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    out = tmp_path / "precious.db"
    out.write_bytes(b"mine")
    with pytest.raises(LitestreamVFSError, match=f"{out} already exists; refusing to overwrite it"):
        restore(replica, replica.latest(), str(out))
    assert out.read_bytes() == b"mine"
    assert os.listdir(tmp_path) == ["precious.db"]


def test_an_output_that_cannot_be_created_is_named(file_replica, tmp_path):
    replica = open_replica(file_replica.url)
    out = tmp_path / "missing-dir" / "out.db"
    with pytest.raises(LitestreamVFSError, match=f"cannot create {out}: No such file or directory"):
        restore(replica, replica.latest(), str(out))


def test_a_restore_that_fails_leaves_nothing_behind(replica_copy, tmp_path):
    """Every file damaged where only the file checksum can tell: no state can be rebuilt, and
    neither the output nor its temporary file remains."""
    replica = open_replica(str(replica_copy))
    state = replica.latest()
    for path in replica_copy.rglob("*.ltx"):
        damaged = bytearray(path.read_bytes())
        damaged[ltx.HEADER_SIZE] ^= 0xFF  # the first frame's page number
        path.write_bytes(bytes(damaged))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(LitestreamVFSError):
        restore(replica, state, str(out_dir / "out.db"))
    assert os.listdir(out_dir) == []


def test_a_large_file_is_fetched_in_frame_aligned_ranges_of_about_a_chunk(versioned_file_replica, monkeypatch):
    monkeypatch.setattr(restore_module, "CHUNK_BYTES", SMALL_CHUNK)
    replica = open_replica(versioned_file_replica.url)
    snapshot = max(replica.latest().plan, key=lambda obj: obj.size)
    tail = ltx.decode_file(replica.read_object(snapshot), str(snapshot)).tail
    frames_end = tail.index_offset - len(END_MARKER)
    ranges = list(restore_module._frame_ranges(tail, frames_end))
    frame_starts = {entry.offset for entry in tail.index.values()}
    assert ranges[0][0] == ltx.HEADER_SIZE and ranges[-1][1] == frames_end
    assert all(end == next_start for (_, end), (next_start, _) in zip(ranges, ranges[1:]))
    assert all(start in frame_starts for start, _ in ranges)
    assert all(end - start <= SMALL_CHUNK for start, end in ranges)
    assert len(ranges) >= (frames_end - ltx.HEADER_SIZE) // SMALL_CHUNK
