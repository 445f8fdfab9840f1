"""Streaming decode of real Litestream files (0.5.15 LZ4 frames, 0.5.17 LZ4 blocks): the same
pages as decoding the whole file, in index order, and a clear error for every way the stream
can be cut, reordered or corrupted."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from litestream_vfs.errors import ChecksumMismatch, LTXError
from litestream_vfs.ltx import FRAME_FLAG_LZ4_BLOCK, HEADER_SIZE, decode_file, parse_tail
from litestream_vfs.ltx.frame import FRAME_HEADER
from litestream_vfs.ltx.stream import StreamingDecoder

#: Litestream version -> the frame flags its files carry (0: LZ4 frame format).
FRAME_FLAGS = {"0.5.15": 0, "0.5.17": FRAME_FLAG_LZ4_BLOCK}
#: Offset of the last byte of the header's timestamp (covered by the file checksum only).
TIMESTAMP_LAST_BYTE = 39


@pytest.fixture(scope="module", params=sorted(FRAME_FLAGS))
def real_file(request, replica_factory) -> tuple[str, bytes]:
    """(version, bytes) of the largest LTX file (the snapshot) a real Litestream wrote."""
    replica = replica_factory.get(request.param, "file")
    path = max(Path(replica.url).rglob("*.ltx"), key=lambda p: p.stat().st_size)
    return request.param, path.read_bytes()


def decoder_for(data: bytes) -> StreamingDecoder:
    tail = parse_tail(data, len(data), "real.ltx")
    return StreamingDecoder(data[:HEADER_SIZE], tail, len(data), "real.ltx")


def frame_aligned_ranges(decoder: StreamingDecoder, seed: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering every frame, split at random frame boundaries."""
    rng = random.Random(seed)
    boundaries = [entry.offset for entry in decoder.tail.index.values()]
    cuts = sorted(rng.sample(boundaries[1:], k=min(len(boundaries) - 1, rng.randint(1, 12))))
    edges = [boundaries[0], *cuts, decoder.frames_end]
    return list(zip(edges, edges[1:]))


def test_the_fixture_covers_both_frame_formats(real_file):
    version, data = real_file
    decoder = decoder_for(data)
    flags = {FRAME_HEADER.unpack_from(data, entry.offset)[1] for entry in decoder.tail.index.values()}
    assert flags == {FRAME_FLAGS[version]}
    assert len(decoder.tail.index) > 100  # enough frames for the splits below to mean something


@pytest.mark.parametrize("seed", range(3))
def test_streamed_pages_equal_the_whole_file_decode(real_file, seed):
    _, data = real_file
    whole = decode_file(data, "real.ltx")
    decoder = decoder_for(data)
    streamed = []
    for start, end in frame_aligned_ranges(decoder, seed):
        streamed.extend(decoder.feed(start, data[start:end]))
    decoder.finish(data[decoder.frames_end:])
    assert [pgno for pgno, _ in streamed] == list(decoder.tail.index)
    assert dict(streamed) == whole.pages
    assert decoder.header == whole.header


def test_one_range_with_every_frame_decodes_too(real_file):
    _, data = real_file
    decoder = decoder_for(data)
    first = next(iter(decoder.tail.index.values())).offset
    assert dict(decoder.feed(first, data[first:decoder.frames_end])) == decode_file(data, "real.ltx").pages
    decoder.finish(data[decoder.frames_end:])


def test_a_range_that_cuts_a_frame_names_the_page(real_file):
    _, data = real_file
    decoder = decoder_for(data)
    (first_pgno, first), (second_pgno, second) = list(decoder.tail.index.items())[:2]
    cut_end = second.offset + second.size - 1
    with pytest.raises(LTXError, match=f"real.ltx: range ending at {cut_end} cuts the frame of page {second_pgno}"):
        list(decoder.feed(first.offset, data[first.offset:cut_end]))


@pytest.mark.parametrize("skipped", [1, 3])
def test_a_range_after_a_gap_yields_no_page(real_file, skipped):
    _, data = real_file
    decoder = decoder_for(data)
    entries = list(decoder.tail.index.values())
    start = entries[skipped].offset
    pages = []
    with pytest.raises(LTXError, match=f"^real.ltx: bytes given from offset {start}, but the next frame is at "
                                       f"{entries[0].offset}$"):
        pages.extend(decoder.feed(start, data[start:decoder.frames_end]))
    assert pages == []


def test_a_range_fed_twice_is_refused(real_file):
    _, data = real_file
    decoder = decoder_for(data)
    entries = list(decoder.tail.index.values())
    first = data[entries[0].offset:entries[2].offset]
    assert len(list(decoder.feed(entries[0].offset, first))) == 2
    with pytest.raises(LTXError, match=f"offset {entries[0].offset}, but the next frame is at {entries[2].offset}"):
        list(decoder.feed(entries[0].offset, first))


def test_finishing_before_every_frame_arrived_is_refused(real_file):
    _, data = real_file
    decoder = decoder_for(data)
    entries = list(decoder.tail.index.values())
    list(decoder.feed(entries[0].offset, data[entries[0].offset:entries[-1].offset]))
    with pytest.raises(LTXError, match="not every frame was decoded"):
        decoder.finish(data[decoder.frames_end:])


@pytest.mark.parametrize("cut", [1, 8])
def test_a_cut_end_of_file_is_refused(real_file, cut):
    _, data = real_file
    decoder = decoder_for(data)
    list(decoder.feed(HEADER_SIZE, data[HEADER_SIZE:decoder.frames_end]))
    with pytest.raises(LTXError, match=f"no end marker at offset {decoder.frames_end}"):
        decoder.finish(data[decoder.frames_end:-cut])


def test_changed_bytes_fail_the_file_checksum_at_the_end(real_file):
    """Pages decode (they are provisional), but `finish` refuses the file."""
    _, data = real_file
    damaged = bytearray(data)
    damaged[TIMESTAMP_LAST_BYTE] ^= 0x01
    decoder = decoder_for(bytes(damaged))
    pages = dict(decoder.feed(HEADER_SIZE, bytes(damaged[HEADER_SIZE:decoder.frames_end])))
    assert pages == decode_file(data, "real.ltx").pages
    with pytest.raises(ChecksumMismatch, match="real.ltx: file checksum is"):
        decoder.finish(bytes(damaged[decoder.frames_end:]))
