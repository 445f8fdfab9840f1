"""CRC-64/ISO as LTX uses it: standard check value, incremental use, page checksums."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from litestream_vfs.ltx import crc64, page_checksum


def test_check_value_of_crc64_go_iso() -> None:
    # The catalogue check value of CRC-64/GO-ISO (Go's hash/crc64 with the ISO table).
    assert crc64(b"123456789") == 0xB90956C775A41001


@given(st.binary(max_size=2000), st.data())
def test_incremental_equals_one_shot(data: bytes, split: st.DataObject) -> None:
    cut = split.draw(st.integers(0, len(data)))
    assert crc64(data[cut:], crc64(data[:cut])) == crc64(data)


@given(st.integers(1, 2**32 - 1), st.binary(min_size=1, max_size=1024))
def test_page_checksum_is_crc_of_pgno_and_page_with_flag_bit(pgno: int, page: bytes) -> None:
    checksum = page_checksum(pgno, page)
    assert checksum >> 63 == 1
    assert checksum == crc64(struct.pack(">I", pgno) + page) | 1 << 63
