"""The 100-byte LTX header: what a file covers (TXIDs, page size, commit size, time)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from litestream_vfs.errors import LTXError

HEADER_SIZE = 100
MAGIC = b"LTX1"
FLAG_NO_CHECKSUM = 0x2
"""Header flag set by Litestream 0.5: pre/post-apply database checksums are zero."""

MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 65536

# magic, flags, page_size, commit, min_txid, max_txid, timestamp, pre_apply_checksum,
# wal_offset, wal_size, wal_salt1, wal_salt2, node_id, 20 reserved bytes
_LAYOUT = struct.Struct(">4sIIIQQqQqqIIQ20x")
assert _LAYOUT.size == HEADER_SIZE

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def lock_page(page_size: int) -> int:
    """Page number of SQLite's lock page (byte offset 2**30); it is never stored."""
    return 2**30 // page_size + 1


@dataclass(frozen=True)
class Header:
    """Decoded LTX header; field names follow the LTX format (all integers big-endian)."""

    flags: int
    page_size: int
    commit: int
    min_txid: int
    max_txid: int
    timestamp_ms: int
    pre_apply_checksum: int = 0
    wal_offset: int = 0
    wal_size: int = 0
    wal_salt1: int = 0
    wal_salt2: int = 0
    node_id: int = 0

    @classmethod
    def parse(cls, data: bytes, name: str) -> "Header":
        """Decode and validate the first HEADER_SIZE bytes of ``data`` (the file ``name``)."""
        if len(data) < HEADER_SIZE:
            raise LTXError(name, f"too short for an LTX header ({len(data)} of {HEADER_SIZE} bytes)")
        magic, *fields = _LAYOUT.unpack_from(data)
        if magic != MAGIC:
            raise LTXError(name, f"not an LTX file (magic {magic!r}, expected {MAGIC!r})")
        header = cls(*fields)
        if not (
            MIN_PAGE_SIZE <= header.page_size <= MAX_PAGE_SIZE
            and header.page_size & (header.page_size - 1) == 0
        ):
            raise LTXError(name, f"invalid page size {header.page_size}")
        if not 1 <= header.min_txid <= header.max_txid:
            raise LTXError(
                name, f"invalid TXID range {header.min_txid:016x}-{header.max_txid:016x}"
            )
        return header

    def to_bytes(self) -> bytes:
        """The header as it is stored at the start of an LTX file."""
        return _LAYOUT.pack(
            MAGIC,
            self.flags,
            self.page_size,
            self.commit,
            self.min_txid,
            self.max_txid,
            self.timestamp_ms,
            self.pre_apply_checksum,
            self.wal_offset,
            self.wal_size,
            self.wal_salt1,
            self.wal_salt2,
            self.node_id,
        )

    @property
    def timestamp(self) -> datetime:
        """The header time as an aware UTC datetime (exact to the millisecond)."""
        return _EPOCH + timedelta(milliseconds=self.timestamp_ms)
