"""Page index and trailer: parsing from any file suffix, and refusing inconsistent indexes."""

from __future__ import annotations

import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litestream_vfs.errors import LTXError
from litestream_vfs.ltx import HEADER_SIZE, TRAILER_SIZE, IndexEntry, NeedMoreBytes, encode_file, parse_tail
from ltx_samples import FLAVOURS, contents, make_header, page_bytes

NAME = "s3://bucket/db/0000/0000000000000005-0000000000000009.ltx"


def uvarint(value: int) -> bytes:
    """Go's binary.PutUvarint, written out independently of the codec."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tail_bytes(triples: list[tuple[int, int, int]], *, checksum: int = 1 << 63, terminator: bytes = b"\x00") -> bytes:
    """End marker, an index of the given triples, its size and a trailer."""
    index = b"".join(uvarint(v) for triple in triples for v in triple) + terminator
    return bytes(6) + index + struct.pack(">QQQ", len(index), 0, checksum)


@settings(max_examples=25, deadline=None)
@given(contents(page_sizes=[512, 1024, 4096], max_pages=5), st.sampled_from(FLAVOURS))
def test_every_suffix_parses_or_asks_for_exactly_what_it_needs(sample: tuple, flavour: str) -> None:
    header, pages = sample
    data = encode_file(header, pages, flavour=flavour)
    full = parse_tail(data, len(data), NAME)
    needed = len(data) - full.index_offset
    for length in range(len(data) + 1):
        suffix = data[len(data) - length :]
        if length < needed:
            with pytest.raises(NeedMoreBytes) as caught:
                parse_tail(suffix, len(data), NAME)
            # Under 24 bytes the index size is unknown: first ask for enough to read it.
            assert caught.value.needed == (needed if length >= TRAILER_SIZE + 8 else TRAILER_SIZE + 8)
        else:
            assert parse_tail(suffix, len(data), NAME) == full


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_index_locates_each_frame_in_ascending_page_order(flavour: str) -> None:
    pages = {n: page_bytes(n, 1024) for n in (9, 2, 5, 1)}
    data = encode_file(make_header(1024, pages), pages, flavour=flavour)
    tail = parse_tail(data, len(data), NAME)
    assert list(tail.index) == sorted(pages)
    first = min(tail.index.values(), key=lambda e: e.offset)
    assert first.offset == HEADER_SIZE
    for pgno, entry in tail.index.items():
        assert struct.unpack_from(">I", data, entry.offset) == (pgno,)
    last = tail.index[max(pages)]
    assert data[last.offset + last.size : tail.index_offset] == bytes(6)
    assert tail.trailer.file_checksum == struct.unpack(">Q", data[-8:])[0]
    assert tail.trailer.post_apply_checksum == 0


def test_index_of_a_file_without_pages() -> None:
    data = encode_file(make_header(4096, {}), {})
    tail = parse_tail(data, len(data), NAME)
    assert dict(tail.index) == {} and tail.index_offset == HEADER_SIZE + 6


def _refused(tail: bytes, file_size: int) -> str:
    with pytest.raises(LTXError) as caught:
        parse_tail(tail, file_size, NAME)
    assert not isinstance(caught.value, NeedMoreBytes)
    assert caught.value.name == NAME
    return caught.value.problem


FRAMES = [(1, 100, 50), (2, 150, 50)]  # two frames filling [100, 200), then the end marker


def _size(tail: bytes) -> int:
    return 200 + len(tail)


def test_well_formed_synthetic_tail_parses() -> None:
    tail = tail_bytes(FRAMES)
    parsed = parse_tail(tail, _size(tail), NAME)
    assert dict(parsed.index) == {1: IndexEntry(100, 50), 2: IndexEntry(150, 50)}
    assert parsed.index_offset == 206


@pytest.mark.parametrize(
    "triples",
    [
        pytest.param([(2, 100, 50), (1, 150, 50)], id="pages-descending"),
        pytest.param([(1, 100, 50), (1, 150, 50)], id="page-repeated"),
        pytest.param([(1, 150, 50), (2, 100, 50)], id="frames-out-of-file-order"),
        pytest.param([(1, 100, 60), (2, 150, 50)], id="frames-overlap"),
        pytest.param([(1, 99, 51), (2, 150, 50)], id="frame-inside-header"),
        pytest.param([(1, 100, 50), (2, 150, 51)], id="frame-over-end-marker"),
        pytest.param([(1, 100, 50), (2, 150, 6)], id="frame-without-body"),
        pytest.param([(1, 100, 50), (2, 2**70, 50)], id="offset-beyond-64-bits"),
    ],
)
def test_inconsistent_index_is_refused(triples: list[tuple[int, int, int]]) -> None:
    tail = tail_bytes(triples)
    _refused(tail, _size(tail))


def test_zero_page_number_ends_the_index_early() -> None:
    index = uvarint(1) + uvarint(100) + uvarint(50) + b"\x00" + uvarint(2) + uvarint(150) + uvarint(50)
    tail = tail_bytes([], terminator=index + b"\x00")
    assert "ends after" in _refused(tail, _size(tail))


@pytest.mark.parametrize(
    "terminator",
    [pytest.param(b"", id="no-terminator"), pytest.param(b"\xff" * 11, id="overlong-varint")],
)
def test_unterminated_index_is_refused(terminator: bytes) -> None:
    tail = tail_bytes(FRAMES, terminator=terminator)
    _refused(tail, _size(tail))


def test_checksum_without_flag_bit_is_refused() -> None:
    tail = tail_bytes(FRAMES, checksum=0x1234)
    assert "flag" in _refused(tail, _size(tail))


@pytest.mark.parametrize("index_size", [0, 2**64 - 1, 10_000])
def test_index_size_that_cannot_fit_the_file_is_refused(index_size: int) -> None:
    tail = bytearray(tail_bytes(FRAMES))
    struct.pack_into(">Q", tail, len(tail) - TRAILER_SIZE - 8, index_size)
    assert "index size" in _refused(bytes(tail), _size(tail))


def test_file_too_small_for_ltx_is_refused() -> None:
    _refused(b"", 0)
    _refused(bytes(100), 100)


def test_short_tail_asks_for_the_fixed_end_first() -> None:
    tail = tail_bytes(FRAMES)
    with pytest.raises(NeedMoreBytes) as caught:
        parse_tail(tail[-10:], _size(tail), NAME)
    assert caught.value.needed == TRAILER_SIZE + 8


def test_page_index_answers_like_the_dict_it_replaces_in_under_20_bytes_a_page() -> None:
    """The index of a large snapshot stays in memory while listed: three arrays, no objects."""
    triples = [(pgno, 100 + 50 * i, 50) for i, pgno in enumerate(range(1, 40001, 2))]
    data = bytes(HEADER_SIZE) + bytes(100 + 50 * len(triples)) + tail_bytes(triples)
    index = parse_tail(data, len(data), NAME).index
    expected = {pgno: IndexEntry(offset, size) for pgno, offset, size in triples}
    assert dict(index.items()) == expected and list(index.values()) == list(expected.values())
    assert list(index) == list(expected) and len(index) == len(expected)
    assert index[39999] == expected[39999] and 3 in index and 4 not in index and 40001 not in index
    assert index.get(2) is None and "1" not in index
    with pytest.raises(KeyError):
        index[0]  # noqa: B018 - the lookup is the test
    held = sum(sys.getsizeof(column) for column in (index.pgnos, index.offsets, index.sizes))
    assert held <= 20 * len(index)  # 16, plus what appending over-allocates
