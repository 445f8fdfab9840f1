"""Headers and page indexes of one replica's files: loaded once, kept while listed.

`MetaStore` owns them. A loaded `FileMeta` is returned to the caller directly
(never looked up again in a table that a new listing may have pruned), and
entries are dropped as soon as their file leaves the listing: memory follows
the listing, not the history of the process. States keep the metadata they
were planned with themselves.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence, TypeVar

from . import ltx
from .damage import Damage
from .diskcache import DiskCache
from .errors import LTXError
from .executors import Executors
from .fetcher import PageFetcher
from .pagecache import PageCache
from .pages import FileMeta, file_identity
from .storage.base import Counters, LtxObject, Storage

#: Files up to this size are fetched whole: one request gives header, index,
#: every page, and lets us verify the file checksum before any page is served
#: (verify.py). 1 MiB: at 20 ms per request a whole 1 MiB file arrives about as
#: fast as its header, tail and one page range (benchmarks/REPORT.md, issue 15).
WHOLE_FILE_LIMIT = 1024 * 1024
#: A large file's header is read together with the frames that follow it, up to this size.
HEAD_PREFETCH = 64 * 1024

Charge = Sequence[Counters]
T = TypeVar("T")
#: One version of a listed file: the file and what the listing says of its version (`LtxObject.tag`).
Version = tuple[LtxObject, str]


def version(obj: LtxObject) -> Version:
    return (obj, obj.tag)


def check_header(obj: LtxObject, header: ltx.Header) -> None:
    """The header must name the TXIDs its file name does (on every path, the disk cache's too)."""
    if (header.min_txid, header.max_txid) != (obj.min_txid, obj.max_txid):
        raise LTXError(str(obj), f"header says TXIDs {header.min_txid:016x}-{header.max_txid:016x}, "
                                 "which does not match the file name")


def check_snapshot_index(obj: LtxObject, header: ltx.Header, tail: ltx.Tail) -> None:
    """A file starting at TXID 1 holds every page 1..commit but the lock page: check its index.

    This catches a damaged index of a large snapshot read by ranges (whose
    file checksum is never seen), which could otherwise hide a page.
    """
    if header.min_txid != 1:
        return
    lock = ltx.lock_page(header.page_size)
    expected = header.commit - (1 if header.commit >= lock else 0)
    if len(tail.index) != expected or (tail.index and max(tail.index) != header.commit) or lock in tail.index:
        raise LTXError(str(obj), f"snapshot index lists {len(tail.index)} pages, expected every page "
                                 f"1..{header.commit} but the lock page")


def guess_tail_length(size: int) -> int:
    """A suffix length that usually holds the whole page index (about 1 byte per 150)."""
    return min(size, 32 * 1024 + size // 150)


class Reader:
    """Single GETs charged to the callers' counters and the replica's."""

    def __init__(self, storage: Storage, counters: Counters) -> None:
        self.storage = storage
        self.counters = counters

    def get(self, obj: LtxObject, offset: int, length: int | None, charge: Charge) -> bytes:
        """One GET: a range, or the whole file when `length` is None."""
        began = time.monotonic()
        data = self.storage.read_all(obj) if length is None else self.storage.read_range(obj, offset, length)
        waited = time.monotonic() - began
        for counters in (*charge, self.counters):
            counters.add(gets=1, bytes_fetched=len(data), network_seconds=waited)
        return data


class MetaStore:
    """FileMeta (and bare headers) of the files of the current listing."""

    def __init__(self, reader: Reader, cache: PageCache, fetcher: PageFetcher, executors: Executors,
                 damage: Damage, on_damaged: Callable[[LtxObject, LTXError], None],
                 on_verified: Callable[[FileMeta, Charge], None]) -> None:
        self.reader = reader
        self.damage = damage
        self._on_damaged = on_damaged
        #: Called with every file whose whole bytes matched its file checksum.
        self._on_verified = on_verified
        self.url = reader.storage.url
        self.cache = cache
        self.fetcher = fetcher
        self.executors = executors
        self.disk: DiskCache | None = None
        #: Read no frames speculatively (a large file's header comes alone): set when a local
        #: copy serves the pages (hydrate.py). Small files are still read whole: one request is
        #: the cheapest way to their index, verifies them, and an update of the copy needs them.
        self.index_only = False
        self._lock = threading.Lock()
        self._metas: dict[Version, FileMeta] = {}
        self._headers: dict[Version, ltx.Header] = {}

    def metas(self, objs: Sequence[LtxObject], charge: Charge = ()) -> list[FileMeta]:
        """Header + page index of each file, fetched concurrently for the ones not loaded."""
        with self._lock:
            found = {o: self._metas[version(o)] for o in objs if version(o) in self._metas}
        todo = [o for o in dict.fromkeys(objs) if o not in found]
        loaded = self.executors.run_all([lambda o=o: self._checked(o, self._load, charge) for o in todo])
        found.update(zip(todo, loaded))
        return [found[o] for o in objs]

    def headers(self, objs: Sequence[LtxObject], charge: Charge = ()) -> list[ltx.Header]:
        """Headers only: small files are still fetched whole (same one request, more value)."""
        with self._lock:
            found = {o: (self._metas[v].header if v in self._metas else self._headers[v])
                     for o in objs if (v := version(o)) in self._metas or v in self._headers}
        todo = [o for o in dict.fromkeys(objs) if o not in found]
        loaded = self.executors.run_all([lambda o=o: self._checked(o, self._load_header, charge) for o in todo])
        found.update(zip(todo, loaded))
        return [found[o] for o in objs]

    def _checked(self, obj: LtxObject, read: Callable[[LtxObject, Charge], T], charge: Charge) -> T:
        """Read from a file unless it is known damaged; a structure or checksum error marks it so."""
        problem = self.damage.problem(obj)
        if problem is not None:
            raise LTXError(problem.name, problem.problem)
        try:
            return read(obj, charge)
        except LTXError as exc:
            self._on_damaged(obj, exc)
            raise

    def forget(self, objs: Sequence[LtxObject]) -> None:
        with self._lock:
            for obj in objs:
                self._metas.pop(version(obj), None)
                self._headers.pop(version(obj), None)

    def retain(self, files: frozenset[LtxObject]) -> None:
        """Forget every file not in `files` (it left the listing, or is listed as another version)."""
        keep = {version(o) for o in files}
        with self._lock:
            for table in (self._metas, self._headers):
                for key in [k for k in table if k not in keep]:
                    del table[key]

    def clear(self) -> None:
        with self._lock:
            self._metas.clear()
            self._headers.clear()

    @property
    def sizes(self) -> tuple[int, int]:
        """(files with an index loaded, files with only a header loaded)."""
        with self._lock:
            return len(self._metas), len(self._headers)

    def _keep(self, meta: FileMeta) -> FileMeta:
        with self._lock:
            return self._metas.setdefault(version(meta.obj), meta)

    def _load_header(self, obj: LtxObject, charge: Charge) -> ltx.Header:
        if obj.size <= WHOLE_FILE_LIMIT or (self.disk and self.disk.get_meta(self._disk_key(obj))):
            return self._load(obj, charge).header
        header = ltx.Header.parse(self.reader.get(obj, 0, ltx.HEADER_SIZE, charge), str(obj))
        check_header(obj, header)
        with self._lock:
            self._headers[version(obj)] = header
        return header

    def load_whole(self, obj: LtxObject, charge: Charge = ()) -> FileMeta:
        """Fetch one file whole and verify it (a failure marks it damaged); its pages are cached."""
        return self._keep(self._checked(obj, self._load_whole, charge))

    def _load(self, obj: LtxObject, charge: Charge) -> FileMeta:
        """Header + index of one file: from the disk cache, one whole GET, or header + tail ranges."""
        meta = self._from_disk(obj)
        if meta is None:
            meta = self._load_whole(obj, charge) if obj.size <= WHOLE_FILE_LIMIT else self._load_ranges(obj, charge)
        return self._keep(meta)

    def _from_disk(self, obj: LtxObject) -> FileMeta | None:
        """The index the persistent cache holds for this file version, if it parses and its
        header names this file; a row that does not is ignored (the cache is only a cache)."""
        stored = self.disk.get_meta(self._disk_key(obj)) if self.disk else None
        if stored is None:
            return None
        try:
            return self.make(obj, ltx.Header.parse(stored[0], str(obj)), ltx.parse_tail(stored[1], obj.size, str(obj)))
        except (LTXError, ValueError):
            return None

    def make(self, obj: LtxObject, header: ltx.Header, tail: ltx.Tail) -> FileMeta:
        """The FileMeta of a file whose header and tail were read (header checked against the name)."""
        check_header(obj, header)
        check_snapshot_index(obj, header, tail)
        return FileMeta(obj, header, tail, file_identity(self.url, obj, tail.trailer.file_checksum))

    def _load_whole(self, obj: LtxObject, charge: Charge) -> FileMeta:
        """A small file in one GET: every page decoded, the file checksum verified."""
        data = self.reader.get(obj, 0, None, charge)
        decoded = ltx.decode_file(data, str(obj))
        meta = self.make(obj, decoded.header, decoded.tail)
        for pgno, entry in decoded.tail.index.items():
            self.cache.put((meta.key, entry.offset), decoded.pages[pgno])
        if self.disk:
            self.disk.put_frames(meta.key, ((e.offset, data[e.offset:e.offset + e.size])
                                            for e in decoded.tail.index.values()))
            self.disk.put_meta(self._disk_key(obj), data[:ltx.HEADER_SIZE], data[decoded.tail.index_offset:])
        self._on_verified(meta, charge)  # the seam where a whole file's bytes were verified
        return meta

    def _load_ranges(self, obj: LtxObject, charge: Charge) -> FileMeta:
        """A large file: its header (with the frames after it, usually page 1 and the schema:
        the first read then needs no other request) and its tail, in one concurrent round."""
        head_length = min(ltx.HEADER_SIZE if self.index_only else HEAD_PREFETCH, obj.size)
        head, (tail, tail_bytes) = self.executors.fetch_all([
            lambda: self.reader.get(obj, 0, head_length, charge),
            lambda: self._read_tail(obj, charge)])
        meta = self.make(obj, ltx.Header.parse(head, str(obj)), tail)
        if self.disk:
            self.disk.put_meta(self._disk_key(obj), head[:ltx.HEADER_SIZE], tail_bytes)
        if len(head) > ltx.HEADER_SIZE:
            self.fetcher.keep_range(meta, 0, head)
        return meta

    def _read_tail(self, obj: LtxObject, charge: Charge) -> tuple[ltx.Tail, bytes]:
        """The page index (and the bytes it was parsed from, from the index on)."""
        length = guess_tail_length(obj.size)
        for _ in range(2):
            data = self.reader.get(obj, obj.size - length, length, charge)
            try:
                tail = ltx.parse_tail(data, obj.size, str(obj))
            except ltx.NeedMoreBytes as more:
                if more.needed > obj.size:
                    raise LTXError(str(obj), f"page index claims {more.needed} bytes, file has {obj.size}") from None
                length = more.needed
                continue
            return tail, data[tail.index_offset - (obj.size - length):]
        raise LTXError(str(obj), "page index could not be read")

    def _disk_key(self, obj: LtxObject) -> str:
        """The persistent index's key: what the listing tells apart before the file is read
        (URL, name, size and the listing's version tag, so a re-created file is another key)."""
        return f"{self.url}|{obj}|{obj.size}|{obj.tag}"
