"""Decode a large LTX file piece by piece, in file order, verifying its checksum at the end.

`decode_file` needs the whole file in memory; a restore of a 100 MB snapshot
should not. The caller supplies byte ranges (header, runs of frames, the
end) in file order and gets pages as they decode; the file checksum is
checked when the end arrives, so a caller must treat pages as provisional
until `finish` returns (restore writes to a temporary file for this reason).
"""

from __future__ import annotations

from typing import Iterator

from litestream_vfs.errors import ChecksumMismatch, LTXError

from .checksum import CHECKSUM_FLAG, crc64
from .frame import END_MARKER, decode_page, frame_header_length
from .header import HEADER_SIZE, Header
from .tail import U64, Tail


class StreamingDecoder:
    """Accumulates the file checksum over frames fed in index order."""

    def __init__(self, head: bytes, tail: Tail, file_size: int, name: str) -> None:
        self.name = name
        self.header = Header.parse(head, name)
        self.tail = tail
        self.file_size = file_size
        self._crc = crc64(head[:HEADER_SIZE])
        self._expected_offset = HEADER_SIZE
        self._order = iter(tail.index.items())

    @property
    def frames_end(self) -> int:
        return self.tail.index_offset - len(END_MARKER)

    def feed(self, offset: int, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Decode the frames in `data` (which starts at file `offset` on a frame boundary)."""
        if offset != self._expected_offset:
            raise LTXError(self.name, f"bytes given from offset {offset}, but the next frame is at "
                                      f"{self._expected_offset}")
        view = memoryview(data)
        end = offset + len(data)
        while self._expected_offset < end:
            pgno, entry = next(self._order, (None, None))
            if entry is None or entry.offset != self._expected_offset:
                raise LTXError(self.name, f"frames are not contiguous at offset {self._expected_offset}")
            if entry.offset + entry.size > end:
                raise LTXError(self.name, f"range ending at {end} cuts the frame of page {pgno}")
            frame = view[entry.offset - offset: entry.offset - offset + entry.size]
            page = decode_page(frame, pgno, self.header.page_size, self.name)
            self._crc = crc64(page, crc64(frame[:frame_header_length(frame)], self._crc))
            self._expected_offset += entry.size
            yield pgno, page

    def finish(self, rest: bytes) -> None:
        """`rest` = file bytes from the end marker to the end; raise unless the checksum matches."""
        if self._expected_offset != self.frames_end or next(self._order, None) is not None:
            raise LTXError(self.name, "not every frame was decoded")
        if rest[:len(END_MARKER)] != END_MARKER or len(rest) != self.file_size - self.frames_end:
            raise LTXError(self.name, f"no end marker at offset {self.frames_end}")
        crc = crc64(rest[:-U64.size], self._crc) | CHECKSUM_FLAG
        if crc != self.tail.trailer.file_checksum:
            raise ChecksumMismatch(self.name, f"file checksum is {self.tail.trailer.file_checksum:016x} "
                                              f"but the contents give {crc:016x}")
