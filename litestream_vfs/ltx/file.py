"""Whole LTX files: decode with full verification, and encode (for tests and tools)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from litestream_vfs.errors import ChecksumMismatch, LTXError

from .checksum import CHECKSUM_FLAG, crc64
from .frame import END_MARKER, FLAVOURS, decode_page, encode_frame, frame_header_length
from .header import HEADER_SIZE, Header, lock_page
from .tail import U64, Tail, parse_tail


@dataclass(frozen=True)
class LtxFile:
    """A fully decoded and verified LTX file."""

    header: Header
    pages: Mapping[int, bytes]
    """pgno -> uncompressed page, ascending."""
    tail: Tail


def decode_file(data: bytes, name: str, verify_checksum: bool = True) -> LtxFile:
    """Decode a complete LTX file and check everything that can be checked.

    Besides header, index and frames, the frames must be contiguous from the
    header to the end marker, exactly as the index lists them, and (unless
    verify_checksum is false) the file checksum must match: it is the only
    guard against a flipped bit in an LZ4 block body.
    """
    header = Header.parse(data, name)
    tail = parse_tail(data, len(data), name)
    view = memoryview(data)
    frames_end = tail.index_offset - len(END_MARKER)
    crc = crc64(view[:HEADER_SIZE])
    pages: dict[int, bytes] = {}
    expected_offset = HEADER_SIZE
    forbidden = lock_page(header.page_size)
    for pgno, entry in tail.index.items():
        if entry.offset != expected_offset:
            raise LTXError(
                name, f"frame of page {pgno} is at offset {entry.offset}, expected {expected_offset}"
            )
        if pgno == forbidden:
            raise LTXError(name, f"holds the lock page {pgno}")
        frame = view[entry.offset : entry.offset + entry.size]
        page = decode_page(frame, pgno, header.page_size, name)
        if verify_checksum:
            crc = crc64(page, crc64(frame[: frame_header_length(frame)], crc))
        pages[pgno] = page
        expected_offset += entry.size
    if expected_offset != frames_end:
        raise LTXError(name, f"{frames_end - expected_offset} bytes between the last frame and the end marker")
    if view[frames_end : tail.index_offset] != END_MARKER:
        raise LTXError(name, f"no end marker at offset {frames_end}")
    if verify_checksum:
        # everything after the frames except the file checksum itself
        crc = crc64(view[frames_end : len(data) - U64.size], crc) | CHECKSUM_FLAG
        if crc != tail.trailer.file_checksum:
            raise ChecksumMismatch(
                name, f"file checksum is {tail.trailer.file_checksum:016x} but the contents give {crc:016x}"
            )
    return LtxFile(header, MappingProxyType(pages), tail)


def encode_file(
    header: Header,
    pages: Mapping[int, bytes],
    *,
    flavour: str = "block",
    post_apply_checksum: int = 0,
) -> bytes:
    """Encode an LTX file as Litestream writes it: "block" (0.5.16+) or "frame" (0.5.5-0.5.15)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown frame flavour {flavour!r}, expected one of {FLAVOURS}")
    forbidden = lock_page(header.page_size)
    head = header.to_bytes()
    parts = [head]
    crc = crc64(head)
    index = bytearray()
    offset = HEADER_SIZE
    for pgno in sorted(pages):
        page = pages[pgno]
        if pgno < 1 or pgno == forbidden:
            raise ValueError(f"page number {pgno} cannot be stored (lock page is {forbidden})")
        if len(page) != header.page_size:
            raise ValueError(f"page {pgno} has {len(page)} bytes, expected {header.page_size}")
        frame = encode_frame(pgno, page, flavour)
        crc = crc64(page, crc64(frame[: frame_header_length(frame)], crc))
        parts.append(frame)
        index += _uvarints(pgno, offset, len(frame))
        offset += len(frame)
    index.append(0)
    end = END_MARKER + bytes(index) + U64.pack(len(index)) + U64.pack(post_apply_checksum)
    crc = crc64(end, crc) | CHECKSUM_FLAG
    parts += [end, U64.pack(crc)]
    return b"".join(parts)


def _uvarints(*values: int) -> bytes:
    """Unsigned LEB128 encoding (Go's binary.PutUvarint) of each value, concatenated."""
    out = bytearray()
    for value in values:
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)
