"""LTX header: byte layout round trip and validation."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litestream_vfs.errors import LTXError
from litestream_vfs.ltx import HEADER_SIZE, Header, lock_page
from ltx_samples import PAGE_SIZES

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def headers(draw: st.DrawFn) -> Header:
    min_txid = draw(st.integers(1, 2**64 - 1))
    return Header(
        flags=draw(u32),
        page_size=draw(st.sampled_from(PAGE_SIZES)),
        commit=draw(u32),
        min_txid=min_txid,
        max_txid=draw(st.integers(min_txid, 2**64 - 1)),
        timestamp_ms=draw(st.integers(0, 2**42)),
        pre_apply_checksum=draw(u64),
        wal_offset=draw(i64),
        wal_size=draw(i64),
        wal_salt1=draw(u32),
        wal_salt2=draw(u32),
        node_id=draw(u64),
    )


@given(headers())
def test_round_trip(header: Header) -> None:
    data = header.to_bytes()
    assert len(data) == HEADER_SIZE
    assert data[:4] == b"LTX1" and data[80:] == bytes(20)
    assert Header.parse(data, "x.ltx") == header


def test_fields_are_big_endian_at_documented_offsets() -> None:
    header = Header(flags=2, page_size=4096, commit=7, min_txid=3, max_txid=4, timestamp_ms=123456, node_id=9)
    data = header.to_bytes()
    assert struct.unpack_from(">IIIQQq", data, 4) == (2, 4096, 7, 3, 4, 123456)
    assert struct.unpack_from(">Q", data, 72) == (9,)


def test_timestamp_is_utc_aware_and_exact_to_the_millisecond() -> None:
    expected = datetime(2024, 2, 29, 23, 59, 58, 987000, tzinfo=timezone.utc)
    ms = (expected - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    header = Header(flags=0, page_size=4096, commit=1, min_txid=1, max_txid=1, timestamp_ms=ms)
    assert header.timestamp == expected
    assert header.timestamp.tzinfo is not None


@pytest.mark.parametrize("page_size", PAGE_SIZES)
def test_lock_page_holds_byte_offset_2_pow_30(page_size: int) -> None:
    assert (lock_page(page_size) - 1) * page_size == 2**30


def _valid() -> bytes:
    return Header(flags=2, page_size=4096, commit=1, min_txid=1, max_txid=2, timestamp_ms=0).to_bytes()


def _patched(offset: int, fmt: str, value: int | bytes) -> bytes:
    data = bytearray(_valid())
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(_valid()[:-1], id="short"),
        pytest.param(_patched(0, "4s", b"LTX2"), id="magic"),
        pytest.param(_patched(0, "4s", b"SQLi"), id="sqlite"),
        *(pytest.param(_patched(8, ">I", size), id=f"page-size-{size}") for size in (0, 256, 1000, 4097, 131072)),
        pytest.param(_patched(16, ">Q", 0), id="min-txid-zero"),
        pytest.param(_patched(16, ">Q", 3), id="min-after-max"),
    ],
)
def test_invalid_headers_are_refused_naming_the_file(data: bytes) -> None:
    with pytest.raises(LTXError) as caught:
        Header.parse(data, "replica/ltx/0/bad.ltx")
    assert caught.value.name == "replica/ltx/0/bad.ltx"
    assert "replica/ltx/0/bad.ltx" in str(caught.value)
