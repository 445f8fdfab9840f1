"""Corrupt, truncated and stray files in a real (file) replica.

`validate` reads every file whole and checks its checksum, so it catches any
flipped bit. Reads through the VFS verify the checksum whenever a file is
fetched whole (files up to replica.WHOLE_FILE_LIMIT); files read by range are
checked frame by frame (stored pgno, flags, size prefix, LZ4 decoding to one
page), which cannot see a flip inside an LZ4 body that still decodes, nor one
in the trailer's checksums or the header's timestamp.
"""

from __future__ import annotations

import os
from pathlib import Path

import apsw
import pytest

from litestream_vfs import filemeta as replica_module, ltx
from litestream_vfs.cli import main as cli_main
from litestream_vfs.connect import connect, open_replica
from litestream_vfs.errors import LitestreamVFSError, LTXError
from litestream_vfs.ltx.frame import FRAME_HEADER_SIZE
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.vfs import file_of
from support.truth import ground_truth, table_contents

CLEAN_ERRORS = (apsw.Error, LitestreamVFSError)


def path_of(root: Path, obj: LtxObject) -> Path:
    return root / "ltx" / str(obj.level) / obj.name


def latest_last_file(root: Path) -> tuple[int, LtxObject]:
    """The newest state that only one file ends at, and that file (every page in it is read as is).

    Damage to it cannot be routed around (no other file rebuilds that state),
    so a read of the state must fail naming it.
    """
    replica = open_replica(str(root))
    chains = replica.chains_for()
    ends: dict[int, list[LtxObject]] = {}
    for obj in replica.files:
        ends.setdefault(obj.max_txid, []).append(obj)
    txid = next(t for t in reversed(chains.states) if len(ends[t]) == 1)
    return txid, chains.plan(txid)[-1]


def flip(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def section_offsets(data: bytes, name: str) -> dict[str, int]:
    """One byte offset in each section of an LTX file."""
    decoded = ltx.decode_file(data, name)
    first = next(iter(decoded.tail.index.values()))
    return {
        "header magic": 0,
        "header page size": 10,
        "header max txid": 31,
        "header timestamp": 39,
        "frame header pgno": first.offset + 3,
        "frame header flags": first.offset + 5,
        "page body": first.offset + first.size - 2,
        "index": decoded.tail.index_offset + 1,
        "index size": len(data) - 24 + 7,
        "trailer post-apply checksum": len(data) - 9,
        "trailer file checksum": len(data) - 1,
    }


SECTION_NAMES = ("header magic", "header page size", "header max txid", "header timestamp",
                 "frame header pgno", "frame header flags", "page body", "index", "index size",
                 "trailer post-apply checksum", "trailer file checksum")


def read_every_page(connection: apsw.Connection) -> None:
    """Every page of the state through the VFS's own read method, then every table."""
    file = file_of(connection)
    state = file.state
    for pgno in range(1, state.commit + 1):
        file.xRead(state.page_size, (pgno - 1) * state.page_size)
    table_contents(connection)


@pytest.mark.parametrize("section", SECTION_NAMES)
def test_validate_catches_a_flip_in_every_section(replica_copy, capsys, section):
    _, obj = latest_last_file(replica_copy)
    path = path_of(replica_copy, obj)
    flip(path, section_offsets(path.read_bytes(), obj.name)[section])
    assert cli_main(["validate", str(replica_copy)]) == 1
    out = capsys.readouterr()
    assert obj.name in out.out + out.err


@pytest.mark.parametrize("section", SECTION_NAMES)
def test_whole_file_reads_catch_a_flip_in_every_section(replica_copy, monkeypatch, section):
    monkeypatch.setattr(replica_module, "WHOLE_FILE_LIMIT", 1 << 40)  # every file fetched whole
    txid, obj = latest_last_file(replica_copy)
    path = path_of(replica_copy, obj)
    flip(path, section_offsets(path.read_bytes(), obj.name)[section])
    with pytest.raises(CLEAN_ERRORS, match=obj.name):
        read_every_page(connect(str(replica_copy), txid=f"{txid:016x}"))


#: Flips a range read sees: the header is parsed and matched to the name, every
#: fetched frame's pgno/flags/size prefix are checked, the index is parsed.
CAUGHT_BY_RANGE_READS = ("header magic", "header page size", "header max txid",
                         "frame header pgno", "frame header flags", "index size")


@pytest.mark.parametrize("section", CAUGHT_BY_RANGE_READS)
def test_range_reads_catch_structural_flips(replica_copy, monkeypatch, section):
    monkeypatch.setattr(replica_module, "WHOLE_FILE_LIMIT", 0)  # every file read by range
    txid, obj = latest_last_file(replica_copy)
    path = path_of(replica_copy, obj)
    flip(path, section_offsets(path.read_bytes(), obj.name)[section])
    with pytest.raises(CLEAN_ERRORS, match=obj.name):
        read_every_page(connect(str(replica_copy), txid=f"{txid:016x}"))


def body_flips(frame: bytes, pgno: int, page_size: int) -> tuple[int | None, int | None]:
    """(a body offset whose flip breaks LZ4 decoding, one whose flip still decodes to a page)."""
    page = ltx.decode_page(frame, pgno, page_size, "probe")
    breaks = decodes = None
    for pos in range(FRAME_HEADER_SIZE + 4, len(frame)):
        bent = bytearray(frame)
        bent[pos] ^= 0x01
        try:
            if ltx.decode_page(bytes(bent), pgno, page_size, "probe") != page and decodes is None:
                decodes = pos
        except LTXError:
            breaks = pos if breaks is None else breaks
        if breaks is not None and decodes is not None:
            break
    return breaks, decodes


def test_page_body_flips_on_range_reads(replica_copy, monkeypatch, capsys):
    """A body flip that breaks LZ4 is caught by a range read; one that still decodes
    is invisible to it (no per-page checksum in the format) and only validate sees it."""
    monkeypatch.setattr(replica_module, "WHOLE_FILE_LIMIT", 0)
    txid, obj = latest_last_file(replica_copy)
    path = path_of(replica_copy, obj)
    pristine = path.read_bytes()
    decoded = ltx.decode_file(pristine, obj.name)
    pgno, entry = next(iter(decoded.tail.index.items()))
    frame = pristine[entry.offset:entry.offset + entry.size]
    breaks, decodes = body_flips(frame, pgno, decoded.header.page_size)
    assert breaks is not None and decodes is not None

    flip(path, entry.offset + breaks)
    with pytest.raises(CLEAN_ERRORS, match=obj.name):
        read_every_page(connect(str(replica_copy), txid=f"{txid:016x}"))

    path.write_bytes(pristine)
    flip(path, entry.offset + decodes)
    assert cli_main(["validate", str(replica_copy)]) == 1
    assert "checksum" in capsys.readouterr().out


def test_truncated_file_is_an_error_naming_it(replica_copy, capsys):
    txid, obj = latest_last_file(replica_copy)
    path = path_of(replica_copy, obj)
    os.truncate(path, obj.size // 2)
    with pytest.raises(CLEAN_ERRORS, match=obj.name):
        read_every_page(connect(str(replica_copy), txid=f"{txid:016x}"))
    assert cli_main(["validate", str(replica_copy)]) == 1
    assert obj.name in capsys.readouterr().out


def test_junk_in_level_directories_is_ignored(replica_copy, file_replica):
    txid, obj = latest_last_file(replica_copy)
    level_dir = path_of(replica_copy, obj).parent
    (level_dir / "README").write_text("not an LTX file")
    (level_dir / f"{obj.name}.tmp").write_bytes(b"partial upload")
    (level_dir / "zzzzzzzzzzzzzzzz-zzzzzzzzzzzzzzzz.ltx").write_bytes(b"junk")
    (level_dir / "0000000000000000-0000000000000001.ltx").write_bytes(b"txid 0 is not a file")
    (level_dir / "00000000000000ff-00000000000000ff.ltx").mkdir()
    (replica_copy / "ltx" / "notalevel").mkdir()
    (replica_copy / "ltx" / "notalevel" / obj.name).write_bytes(b"junk")
    replica = open_replica(str(replica_copy))
    assert sorted({o.max_txid for o in replica.files}) == file_replica.litestream_txids()
    connection = connect(str(replica_copy), txid=f"{txid:016x}")
    assert table_contents(connection) == ground_truth(file_replica.restore(txid))


def test_header_txids_that_contradict_the_name_are_an_error(replica_copy):
    """An L0 file swapped with another: its header names the other's TXIDs."""
    replica = open_replica(str(replica_copy))
    chains = replica.chains_for()
    ends = {o.max_txid for o in replica.files if o.level >= 1}
    txid = next(t for t in reversed(chains.states) if t not in ends and chains.plan(t)[-1].level == 0)
    target = path_of(replica_copy, chains.plan(txid)[-1])
    other = next(p for p in sorted(target.parent.glob("*.ltx")) if p != target)
    target_bytes = target.read_bytes()
    target.write_bytes(other.read_bytes())
    other.write_bytes(target_bytes)
    fresh_url = f"file://{replica_copy}"  # not the URL listed above, whose sizes are now stale
    with pytest.raises(CLEAN_ERRORS, match=f"{target.name}.*does not match the file name"):
        read_every_page(connect(fresh_url, txid=f"{txid:016x}"))


def test_a_snapshot_index_missing_a_page_is_refused(tmp_path):
    """A large snapshot is read by ranges, so its file checksum is never seen: its index is
    checked for completeness instead (a lost entry would otherwise hide a page)."""
    from litestream_vfs import ltx
    from litestream_vfs.replica import check_snapshot_index
    from litestream_vfs.storage.base import LtxObject

    pages = {p: bytes([p]) * 512 for p in range(1, 6)}
    header = ltx.Header(flags=2, page_size=512, commit=5, min_txid=1, max_txid=1, timestamp_ms=0)
    whole = ltx.decode_file(ltx.encode_file(header, pages), "full")
    check_snapshot_index(LtxObject(0, 1, 1, 1), header, whole.tail)
    partial = ltx.decode_file(ltx.encode_file(header, {p: b for p, b in pages.items() if p != 3}), "holey")
    with pytest.raises(LTXError, match="expected every page 1..5"):
        check_snapshot_index(LtxObject(0, 1, 1, 1), header, partial.tail)
