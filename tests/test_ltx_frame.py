"""Page frames, both flavours: decoding, and refusing anything that is not exactly the asked-for page."""

from __future__ import annotations

import struct

import lz4.block
import pytest
from hypothesis import given
from hypothesis import strategies as st

from litestream_vfs.errors import LTXError
from litestream_vfs.ltx import FRAME_FLAG_LZ4_BLOCK, decode_page
from litestream_vfs.ltx.frame import encode_frame
from ltx_samples import FLAVOURS, PAGE_SIZES, page_bytes

NAME = "replica/ltx/0/0000000000000001-0000000000000001.ltx"


@given(st.sampled_from(PAGE_SIZES), st.sampled_from(FLAVOURS), st.integers(1, 2**32 - 1), st.integers(0, 2**32))
def test_round_trip(page_size: int, flavour: str, pgno: int, seed: int) -> None:
    page = page_bytes(seed, page_size)
    assert decode_page(encode_frame(pgno, page, flavour), pgno, page_size, NAME) == page


def test_frame_headers_of_both_flavours() -> None:
    page = page_bytes(1, 4096)
    block = encode_frame(7, page, "block")
    assert struct.unpack_from(">IHI", block) == (7, FRAME_FLAG_LZ4_BLOCK, len(block) - 10)
    assert lz4.block.decompress(block[10:], uncompressed_size=4096) == page
    frame = encode_frame(7, page, "frame")
    assert struct.unpack_from(">IH", frame) == (7, 0)
    assert frame[6:10] == bytes.fromhex("04224d18")  # LZ4 frame magic


def _refused(frame: bytes, pgno: int = 3, page_size: int = 4096) -> LTXError:
    with pytest.raises(LTXError) as caught:
        decode_page(frame, pgno, page_size, NAME)
    assert caught.value.name == NAME
    return caught.value


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_frame_for_another_page_is_refused(flavour: str) -> None:
    assert "page 4" in str(_refused(encode_frame(4, page_bytes(2, 4096), flavour), pgno=3))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("page_size", [2048, 8192])
def test_page_of_the_wrong_size_is_refused(flavour: str, page_size: int) -> None:
    _refused(encode_frame(3, page_bytes(2, 4096), flavour), page_size=page_size)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_frame_with_stray_or_missing_bytes_is_refused(flavour: str) -> None:
    frame = encode_frame(3, page_bytes(2, 4096), flavour)
    _refused(frame + b"\x00")
    _refused(frame[:-1])


@pytest.mark.parametrize("length", range(0, 11))
def test_frames_shorter_than_their_header_are_refused(length: int) -> None:
    _refused(encode_frame(3, page_bytes(2, 4096), "block")[:length])


def test_block_size_prefix_must_match_frame_length() -> None:
    frame = bytearray(encode_frame(3, page_bytes(2, 4096), "block"))
    struct.pack_into(">I", frame, 6, len(frame) - 11)
    assert "size prefix" in str(_refused(bytes(frame)))


@pytest.mark.parametrize("flags", [2, 3, 0x8000])
def test_unknown_frame_flags_are_refused(flags: int) -> None:
    frame = bytearray(encode_frame(3, page_bytes(2, 4096), "block"))
    struct.pack_into(">H", frame, 4, flags)
    assert "flags" in str(_refused(bytes(frame)))


def test_no_bit_flip_in_an_lz4_frame_body_yields_a_wrong_page() -> None:
    """The frame flavour carries LZ4 header and content checksums, so decode_page alone never
    returns a wrong page from it; the block flavour has no such check (see test_ltx_corruption).

    Some flips do decode to the very same page (a match offset moved within a run of zeros):
    that is harmless, and the only outcome allowed besides an LTXError.
    """
    page = page_bytes(2, 512)
    frame = encode_frame(3, page, "frame")
    refused = 0
    for position in range(6, len(frame)):
        for bit in range(8):
            corrupt = bytearray(frame)
            corrupt[position] ^= 1 << bit
            try:
                assert decode_page(bytes(corrupt), 3, 512, NAME) == page
            except LTXError:
                refused += 1
    assert refused > 0.9 * 8 * (len(frame) - 6)
