"""The end of an LTX file: page index, index size and trailer.

The index locates every page frame, so a reader that fetches only the last
few KiB of a file (one range request) can then fetch exactly the frames a
query needs.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from litestream_vfs.errors import LTXError

from .checksum import CHECKSUM_FLAG
from .frame import FRAME_HEADER_SIZE
from .header import HEADER_SIZE

TRAILER_SIZE = 16
U64 = struct.Struct(">Q")
_TRAILER = struct.Struct(">QQ")
_FIXED_END = U64.size + TRAILER_SIZE
MIN_FILE_SIZE = HEADER_SIZE + FRAME_HEADER_SIZE + 1 + _FIXED_END
"""Header, end marker, an empty index (its 0x00) and the fixed-size end."""


class IndexEntry(NamedTuple):
    """Where one page frame lies in the file (offset from the file start, length).

    A NamedTuple, not a dataclass: a snapshot's index has one per page and
    building it is on the path of opening a database.
    """

    offset: int
    size: int


@dataclass(frozen=True)
class Trailer:
    """The last 16 bytes: database checksum after applying the file (0 under FLAG_NO_CHECKSUM), file checksum."""

    post_apply_checksum: int
    file_checksum: int


class PageIndex(Mapping[int, IndexEntry]):
    """pgno -> IndexEntry, held as three arrays in pgno order.

    24 bytes a page instead of about 200 for a dict of tuples: a snapshot of a
    1 GB database has 260 k pages, and its index stays in memory while listed.
    Entries are made on lookup; `pgnos`, `offsets` and `sizes` are public so
    that frame tables share them instead of copying.
    """

    __slots__ = ("pgnos", "offsets", "sizes")

    def __init__(self, pgnos: array, offsets: array, sizes: array) -> None:
        self.pgnos, self.offsets, self.sizes = pgnos, offsets, sizes

    def position(self, pgno: int) -> int:
        """The entry number of `pgno`, or -1."""
        i = bisect_left(self.pgnos, pgno)
        return i if i < len(self.pgnos) and self.pgnos[i] == pgno else -1

    def __getitem__(self, pgno: int) -> IndexEntry:
        i = self.position(pgno) if isinstance(pgno, int) else -1
        if i < 0:
            raise KeyError(pgno)
        return IndexEntry(self.offsets[i], self.sizes[i])

    def __contains__(self, pgno: object) -> bool:
        return isinstance(pgno, int) and self.position(pgno) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self.pgnos)

    def __len__(self) -> int:
        return len(self.pgnos)

    def values(self) -> Iterator[IndexEntry]:  # type: ignore[override]
        return map(IndexEntry, self.offsets, self.sizes)

    def items(self) -> Iterator[tuple[int, IndexEntry]]:  # type: ignore[override]
        return zip(self.pgnos, self.values())

    def __repr__(self) -> str:
        return f"PageIndex({len(self)} pages)"


@dataclass(frozen=True)
class Tail:
    """Everything after the end marker: enough to locate and verify the file's pages."""

    index: PageIndex
    """pgno -> frame location, in ascending pgno order."""
    trailer: Trailer
    index_offset: int
    """File offset where the index bytes start (the end marker lies just before)."""


class NeedMoreBytes(LTXError):
    """The tail given to parse_tail does not reach back to the start of the index."""

    def __init__(self, name: str, have: int, needed: int) -> None:
        super().__init__(name, f"the last {have} bytes do not hold the page index: need the last {needed}")
        self.needed = needed


def parse_tail(tail: bytes, file_size: int, name: str) -> Tail:
    """Parse and validate index and trailer from the last len(tail) bytes of a file.

    Raises NeedMoreBytes (with the tail length required) when the index starts
    before ``tail`` does; with fewer than 24 bytes that is 24, enough to learn
    the index size. Any structural problem is an LTXError naming ``name``.
    """
    if file_size < MIN_FILE_SIZE:
        raise LTXError(name, f"{file_size} bytes is too small for an LTX file (minimum {MIN_FILE_SIZE})")
    if len(tail) > file_size:
        raise ValueError(f"{name}: tail of {len(tail)} bytes is longer than the file ({file_size} bytes)")
    if len(tail) < _FIXED_END:
        raise NeedMoreBytes(name, len(tail), _FIXED_END)
    end = len(tail)
    (index_size,) = U64.unpack_from(tail, end - _FIXED_END)
    index_offset = file_size - _FIXED_END - index_size
    frames_end = index_offset - FRAME_HEADER_SIZE
    if index_size < 1 or frames_end < HEADER_SIZE:
        raise LTXError(name, f"invalid page index size {index_size} for a file of {file_size} bytes")
    if len(tail) < index_size + _FIXED_END:
        raise NeedMoreBytes(name, len(tail), index_size + _FIXED_END)
    start = end - _FIXED_END - index_size
    index = _parse_index(memoryview(tail)[start : end - _FIXED_END], frames_end, name)
    post_apply, file_checksum = _TRAILER.unpack_from(tail, end - TRAILER_SIZE)
    if not file_checksum & CHECKSUM_FLAG:
        raise LTXError(name, f"file checksum {file_checksum:016x} lacks the checksum flag bit")
    return Tail(index, Trailer(post_apply, file_checksum), index_offset)


def _parse_index(data: memoryview, frames_end: int, name: str) -> PageIndex:
    """Decode the uvarint triples (pgno, offset, size) up to the terminating 0x00.

    Frames must lie between the header and the end marker, in pgno order and
    file order, without overlapping.
    """
    values = _uvarints(bytes(data), name)
    pgnos, offsets, sizes = array("I"), array("Q"), array("I")
    prev_pgno, prev_end = 0, HEADER_SIZE
    for i in range(0, len(values), 3):
        if values[i] == 0:
            if i != len(values) - 1:
                raise LTXError(name, f"page index ends after {i // 3} entries but holds more bytes")
            break
        if i + 2 >= len(values):
            raise LTXError(name, "page index is truncated: no terminating zero")
        pgno, offset, size = values[i], values[i + 1], values[i + 2]
        if pgno <= prev_pgno:
            raise LTXError(name, f"page index out of order: page {pgno} after page {prev_pgno}")
        if size <= FRAME_HEADER_SIZE or offset < prev_end or offset + size > frames_end:
            raise LTXError(
                name,
                f"page index entry for page {pgno} (offset {offset}, size {size}) lies outside the "
                f"frame area [{prev_end}, {frames_end}) or overlaps the previous frame",
            )
        pgnos.append(pgno)
        offsets.append(offset)
        sizes.append(size)
        prev_pgno, prev_end = pgno, offset + size
    else:
        raise LTXError(name, "page index is truncated: no terminating zero")
    return PageIndex(pgnos, offsets, sizes)


def _uvarints(data: bytes, name: str) -> list[int]:
    """Every unsigned LEB128 varint (Go's binary.Uvarint) in `data`, in one pass."""
    values: list[int] = []
    append = values.append
    value = shift = 0
    for byte in data:
        if byte < 0x80:
            append(value | byte << shift)
            value = shift = 0
        else:
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 63:
                break
    if shift:
        raise LTXError(name, "page index is truncated or holds a malformed varint")
    return values
