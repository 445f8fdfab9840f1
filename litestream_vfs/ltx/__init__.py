"""LTX, the file format of Litestream 0.5 replicas: header, page frames, index, trailer."""

from .checksum import crc64, page_checksum
from .file import LtxFile, decode_file, encode_file
from .frame import FRAME_FLAG_LZ4_BLOCK, decode_page
from .header import FLAG_NO_CHECKSUM, HEADER_SIZE, Header, lock_page
from .tail import TRAILER_SIZE, IndexEntry, NeedMoreBytes, Tail, Trailer, parse_tail

__all__ = [
    "FLAG_NO_CHECKSUM",
    "FRAME_FLAG_LZ4_BLOCK",
    "HEADER_SIZE",
    "TRAILER_SIZE",
    "Header",
    "IndexEntry",
    "LtxFile",
    "NeedMoreBytes",
    "Tail",
    "Trailer",
    "crc64",
    "decode_file",
    "decode_page",
    "encode_file",
    "lock_page",
    "page_checksum",
    "parse_tail",
]
