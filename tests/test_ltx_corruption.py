"""Truncated, bit-flipped and foreign files: decode_file must refuse them, naming the file.

Litestream 0.5 stores no per-page checksum, and a raw LZ4 block has none either, so
decode_page alone cannot notice every flipped bit in a block body: the flip can
decompress to a wrong page of the right size. Only the file checksum, which covers
the uncompressed pages, catches that, and it needs the whole file (decode_file).
The LZ4 *frame* flavour (Litestream 0.5.5 to 0.5.15) does carry a content checksum.
"""

from __future__ import annotations

import random
from functools import cache

import pytest

from litestream_vfs.errors import ChecksumMismatch, LTXError
from litestream_vfs.ltx import HEADER_SIZE, LtxFile, decode_file, decode_page, encode_file
from litestream_vfs.ltx.frame import frame_header_length
from ltx_samples import FLAVOURS, make_header
from support.workload import chinook_source

NAME = "replica/ltx/0/0000000000000005-0000000000000009.ltx"


@cache
def sample(flavour: str) -> tuple[bytes, LtxFile]:
    """A small file (so every byte can be corrupted): four pages, some text, mostly zeros."""
    rng = random.Random(flavour)
    pages = {n: rng.randbytes(24) + bytes(488) for n in (1, 2, 3, 7)}
    data = encode_file(make_header(512, pages), pages, flavour=flavour, post_apply_checksum=0x8000_0000_0000_1234)
    return data, decode_file(data, NAME)


def sections(data: bytes, decoded: LtxFile) -> dict[str, tuple[int, int]]:
    """Byte ranges of each part of an LTX file."""
    frames_end = decoded.tail.index_offset - 6
    return {
        "header": (0, HEADER_SIZE),
        "frames": (HEADER_SIZE, frames_end),
        "end marker": (frames_end, decoded.tail.index_offset),
        "index": (decoded.tail.index_offset, len(data) - 24),
        "index size": (len(data) - 24, len(data) - 16),
        "trailer": (len(data) - 16, len(data)),
    }


def compressed_bytes(data: bytes, decoded: LtxFile) -> set[int]:
    """Offsets of LZ4 data (the only bytes the file checksum does not cover)."""
    return {
        position
        for entry in decoded.tail.index.values()
        for position in range(entry.offset + frame_header_length(data[entry.offset :]), entry.offset + entry.size)
    }


def section_of(position: int, data: bytes, decoded: LtxFile) -> str:
    return next(name for name, (start, end) in sections(data, decoded).items() if start <= position < end)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_truncation_is_refused(flavour: str) -> None:
    data, decoded = sample(flavour)
    assert all(end > start for start, end in sections(data, decoded).values())
    for length in range(len(data)):
        with pytest.raises(LTXError) as caught:
            decode_file(data[:length], NAME)
        assert caught.value.name == NAME, section_of(length, data, decoded)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_bit_flip_is_refused_or_harmless(flavour: str) -> None:
    """A flip is refused; where the structure survives it, the checksum is what refuses it.

    The one exception: a flip inside LZ4 data that still decompresses to the very same
    pages (e.g. a match offset moved within a run of zeros) is harmless and accepted.
    """
    data, decoded = sample(flavour)
    lz4_data = compressed_bytes(data, decoded)
    outcomes = {"structure": 0, "checksum": 0, "harmless": 0}
    for position in range(len(data)):
        for bit in range(8):
            corrupt = bytearray(data)
            corrupt[position] ^= 1 << bit
            where = f"{section_of(position, data, decoded)} byte {position} bit {bit}"
            try:
                lenient = decode_file(bytes(corrupt), NAME, verify_checksum=False)
            except LTXError as exc:
                assert exc.name == NAME, where
                with pytest.raises(LTXError):
                    decode_file(bytes(corrupt), NAME)
                outcomes["structure"] += 1
                continue
            if position in lz4_data and lenient.pages == decoded.pages:
                assert decode_file(bytes(corrupt), NAME) == decoded, where
                outcomes["harmless"] += 1
                continue
            with pytest.raises(ChecksumMismatch) as caught:
                decode_file(bytes(corrupt), NAME)
            assert caught.value.name == NAME, where
            outcomes["checksum"] += 1
    assert outcomes["structure"] and outcomes["checksum"], outcomes


def test_decode_page_cannot_see_a_flip_in_a_block_body_but_the_file_checksum_can() -> None:
    data, decoded = sample("block")
    entry = decoded.tail.index[1]
    corrupt = bytearray(data)
    corrupt[entry.offset + entry.size - 1] ^= 0x01  # an LZ4 block always ends with literals
    wrong = decode_page(bytes(corrupt[entry.offset : entry.offset + entry.size]), 1, 512, NAME)
    assert len(wrong) == 512 and wrong != decoded.pages[1]
    with pytest.raises(ChecksumMismatch):
        decode_file(bytes(corrupt), NAME)


def _foreign_inputs() -> list:
    rng = random.Random(7)
    valid, _ = sample("block")
    return [
        pytest.param(b"", id="empty"),
        *(pytest.param(rng.randbytes(n), id=f"random-{n}") for n in (10, 131, 5000)),
        pytest.param(b"LTX1" + rng.randbytes(2000), id="magic-then-random"),
        pytest.param(chinook_source().read_bytes(), id="sqlite-database"),
        pytest.param(bytes(100) + valid[100:], id="zeroed-header"),
        pytest.param(valid[:100] + rng.randbytes(len(valid) - 100), id="random-after-header"),
    ]


@pytest.mark.parametrize("data", _foreign_inputs())
def test_not_an_ltx_file_is_refused_naming_the_file(data: bytes) -> None:
    with pytest.raises(LTXError) as caught:
        decode_file(data, NAME)
    assert caught.value.name == NAME and NAME in str(caught.value)
