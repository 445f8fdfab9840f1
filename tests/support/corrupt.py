"""Corrupt a real LTX file the way only its file checksum can notice.

One byte inside a page body is flipped so that the page still decodes, to
different bytes of the right size. Litestream 0.5.17 stores raw LZ4 blocks
(no checksum at all); 0.5.15 stores LZ4 frames whose content checksum would
catch the flip, so it is recomputed for the altered page, as a corruption
before compression (or a malicious edit) would leave it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import lz4.block
import xxhash

from litestream_vfs import ltx
from litestream_vfs.errors import LTXError
from litestream_vfs.ltx.frame import FRAME_HEADER_SIZE

_LZ4_FRAME_CHECKSUM_FLAG = 0x04


def _bent_block_frame(frame: bytes, pgno: int, page_size: int) -> bytes | None:
    page = ltx.decode_page(frame, pgno, page_size, "probe")
    for pos in range(FRAME_HEADER_SIZE + 4, len(frame)):
        bent = bytearray(frame)
        bent[pos] ^= 0x01
        try:
            if ltx.decode_page(bytes(bent), pgno, page_size, "probe") != page:
                return bytes(bent)
        except LTXError:
            continue
    return None


def _bent_lz4_frame(frame: bytes, pgno: int, page_size: int) -> bytes | None:
    """Flip a byte in the (only) block of an LZ4 frame and rewrite the content checksum."""
    body = FRAME_HEADER_SIZE
    flags = frame[body + 4]
    descriptor = 2 + (8 if flags & 0x08 else 0) + 1
    block_start = body + 4 + descriptor
    (block_size,) = struct.unpack_from("<I", frame, block_start)
    data_start, stored = block_start + 4, bool(block_size & 0x80000000)
    data_end = data_start + (block_size & 0x7FFFFFFF)
    if not flags & _LZ4_FRAME_CHECKSUM_FLAG or frame[data_end:data_end + 4] != b"\0\0\0\0":
        return None  # not the one-block, content-checksummed frame Litestream 0.5.15 writes
    page = ltx.decode_page(frame, pgno, page_size, "probe")
    for pos in range(data_start, data_end):
        bent = bytearray(frame)
        bent[pos] ^= 0x01
        block = bytes(bent[data_start:data_end])
        try:
            changed = block if stored else lz4.block.decompress(block, uncompressed_size=page_size)
        except lz4.block.LZ4BlockError:
            continue
        if len(changed) != page_size or changed == page:
            continue
        struct.pack_into("<I", bent, data_end + 4, xxhash.xxh32_intdigest(changed))
        if ltx.decode_page(bytes(bent), pgno, page_size, "probe") == changed:
            return bytes(bent)
    return None


def flip_page_body(path: Path) -> int:
    """Alter one page of the file at `path` in place (its frame still decodes); return its pgno.

    Page 1 is left alone, so the database still opens and the altered page is table data.
    """
    data = bytearray(path.read_bytes())
    decoded = ltx.decode_file(bytes(data), path.name)
    for pgno, entry in decoded.tail.index.items():
        if pgno == 1 or pgno > decoded.header.commit:
            continue
        frame = bytes(data[entry.offset:entry.offset + entry.size])
        flags = struct.unpack_from(">H", frame, 4)[0]
        bend = _bent_block_frame if flags & 0x1 else _bent_lz4_frame
        bent = bend(frame, pgno, decoded.header.page_size)
        if bent is not None:
            data[entry.offset:entry.offset + entry.size] = bent
            path.write_bytes(bytes(data))
            return pgno
    raise AssertionError(f"no page of {path.name} can be altered so that it still decodes")
