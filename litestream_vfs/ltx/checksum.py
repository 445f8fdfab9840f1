"""CRC-64/ISO checksums as LTX files use them (Go's ``hash/crc64`` ISO table).

fastcrc computes the CRC in native code and accepts the previous value as the
starting point, so a checksum can be accumulated piece by piece over a file
without joining its parts into one buffer first.
"""

from __future__ import annotations

import struct

from fastcrc import crc64 as _fastcrc64

CHECKSUM_FLAG = 1 << 63
"""Litestream forces this bit on in every stored checksum (so 0 means "none")."""

_PGNO = struct.Struct(">I")


def crc64(data: bytes, crc: int = 0) -> int:
    """CRC-64/ISO of ``data``, continuing from ``crc`` (0 starts a new checksum)."""
    return _fastcrc64.go_iso(data, initial=crc)


def page_checksum(pgno: int, page: bytes) -> int:
    """Checksum of one database page as LTX defines it: CRC64(u32be(pgno) || page) | 1<<63."""
    return crc64(page, crc64(_PGNO.pack(pgno))) | CHECKSUM_FLAG
