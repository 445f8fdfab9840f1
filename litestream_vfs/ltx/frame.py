"""One page frame: ``pgno u32, flags u16`` then the LZ4-compressed page.

Two flavours exist in Litestream 0.5 replicas, and one replica can hold both:
flags & 0x1 (0.5.16 and later) is a ``size u32`` followed by one raw LZ4 block;
flags == 0 (0.5.5 to 0.5.15) is one self-delimiting LZ4 frame.
"""

from __future__ import annotations

import struct

import lz4.block
import lz4.frame

from litestream_vfs.errors import LTXError

FRAME_FLAG_LZ4_BLOCK = 0x1
FRAME_HEADER = struct.Struct(">IH")
FRAME_HEADER_SIZE = FRAME_HEADER.size
BLOCK_SIZE_PREFIX = struct.Struct(">I")
END_MARKER = bytes(FRAME_HEADER_SIZE)
"""A frame header with page number 0 ends the page frames."""

FLAVOURS = ("block", "frame")


def frame_header_length(frame: bytes) -> int:
    """Bytes of ``frame`` before the compressed data (they are covered by the file checksum)."""
    _, flags = FRAME_HEADER.unpack_from(frame)
    return FRAME_HEADER_SIZE + BLOCK_SIZE_PREFIX.size if flags & FRAME_FLAG_LZ4_BLOCK else FRAME_HEADER_SIZE


def decode_page(frame: bytes, pgno: int, page_size: int, name: str) -> bytes:
    """Decompress the page in ``frame`` (exactly one frame, header included).

    Refuses a frame for another page, a size prefix that disagrees with the
    frame length, and anything that does not decompress to exactly page_size
    bytes. LZ4 blocks carry no checksum, so a flipped bit in a block body can
    still decode to a wrong page of the right size: only the file checksum
    catches that (see decode_file).
    """
    if len(frame) <= FRAME_HEADER_SIZE:
        raise LTXError(name, f"page {pgno}: frame of {len(frame)} bytes is too short")
    stored_pgno, flags = FRAME_HEADER.unpack_from(frame)
    if stored_pgno != pgno:
        raise LTXError(name, f"frame for page {pgno} holds page {stored_pgno}")
    body = memoryview(frame)
    if flags == FRAME_FLAG_LZ4_BLOCK:
        page = _decode_block(body, pgno, page_size, name)
    elif flags == 0:
        page = _decode_lz4_frame(body[FRAME_HEADER_SIZE:], pgno, name)
    else:
        raise LTXError(name, f"page {pgno}: unknown frame flags 0x{flags:04x}")
    if len(page) != page_size:
        raise LTXError(name, f"page {pgno} decompressed to {len(page)} bytes, expected {page_size}")
    return page


def _decode_block(frame: memoryview, pgno: int, page_size: int, name: str) -> bytes:
    start = FRAME_HEADER_SIZE + BLOCK_SIZE_PREFIX.size
    if len(frame) <= start:
        raise LTXError(name, f"page {pgno}: block frame of {len(frame)} bytes is too short")
    (size,) = BLOCK_SIZE_PREFIX.unpack_from(frame, FRAME_HEADER_SIZE)
    if size != len(frame) - start:
        raise LTXError(
            name, f"page {pgno}: block size prefix {size} disagrees with frame data length {len(frame) - start}"
        )
    try:
        return lz4.block.decompress(frame[start:], uncompressed_size=page_size)
    except lz4.block.LZ4BlockError as exc:
        raise LTXError(name, f"page {pgno}: corrupt LZ4 block ({exc})") from None


def _decode_lz4_frame(data: memoryview, pgno: int, name: str) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        page = decompressor.decompress(data)
    except RuntimeError as exc:  # python-lz4 reports every frame error as RuntimeError
        raise LTXError(name, f"page {pgno}: corrupt LZ4 frame ({exc})") from None
    if not decompressor.eof:
        raise LTXError(name, f"page {pgno}: LZ4 frame is truncated")
    if decompressor.unused_data:
        raise LTXError(name, f"page {pgno}: {len(decompressor.unused_data)} stray bytes after the LZ4 frame")
    return page


def encode_frame(pgno: int, page: bytes, flavour: str) -> bytes:
    """One frame for ``page`` in the given flavour ("block" or "frame").

    The LZ4 frame options match Litestream 0.5.15's (independent blocks, content
    checksum, no content size), so its frame descriptor is byte-identical.
    """
    if flavour == "block":
        block = lz4.block.compress(page, store_size=False)
        return FRAME_HEADER.pack(pgno, FRAME_FLAG_LZ4_BLOCK) + BLOCK_SIZE_PREFIX.pack(len(block)) + block
    if flavour == "frame":
        return FRAME_HEADER.pack(pgno, 0) + lz4.frame.compress(page, content_checksum=True, store_size=False)
    raise ValueError(f"unknown frame flavour {flavour!r}, expected one of {FLAVOURS}")
