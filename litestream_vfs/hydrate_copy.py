"""What the hydrator's owner does with LTX files and an existing copy, as functions:
judge whether a copy on disk can be trusted, and stream verified pages into a new one.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Iterable, Mapping
from urllib.parse import quote

import apsw

from .filemeta import WHOLE_FILE_LIMIT
from .pages import PageLocation
from .restore import verified_pages
from .storage.base import LtxObject
from .timeparse import format_txid

if TYPE_CHECKING:
    from .hydrate_local import Meta
    from .replica import Charge, Replica

#: LTX files fetched and written at once during a build.
FILES_IN_PARALLEL = 4
_SQLITE_MAGIC = b"SQLite format 3\x00"

Sink = Callable[[int, bytes], None]


class Stopped(Exception):
    """The hydrator was asked to stop in the middle of a build."""


def distrust(path: str, meta_path: str, meta: Meta | None, replica: Replica, charge: Charge) -> str | None:
    """Why the copy at `path` must not be used, or None if it holds exactly `meta.txid`."""
    if meta is None:
        return f"no usable {meta_path}"
    if meta.replica != replica.storage.url:
        return f"{path} was built from {meta.replica}"
    if meta.pending is not None:
        return f"an update of {path} to TXID {format_txid(meta.pending)} was interrupted"
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if st.st_ino != meta.inode:
        return f"{path} is not the file the metadata describes"
    if st.st_size != meta.db_size or meta.commit < 1:
        return f"{path} is {st.st_size} bytes, expected {meta.db_size}"
    page_size = int.from_bytes(head[16:18], "big") if len(head) >= 20 else 0
    if head[:16] != _SQLITE_MAGIC or (65536 if page_size == 1 else page_size) != meta.page_size \
            or head[18:20] != b"\x01\x01":
        return f"{path} does not start with a rollback-journal SQLite header"
    problem = _distrust_files(path, meta, replica, charge)
    if problem is not None:
        return problem
    return _quick_check(path)

def _distrust_files(path: str, meta: Meta, replica: Replica, charge: Charge) -> str | None:
    """Compare the recorded LTX files with the listing (and checksums already in memory)."""
    chains = replica.chains_for(charge)
    if meta.txid > (chains.latest or 0):  # written by a process that listed more recently than us
        chains = replica.refresh(charge)
    listed = {str(obj): obj for obj in replica.files}
    latest_plan = set(replica.latest(charge).plan)
    for record in meta.files:
        obj = listed.get(str(record["file"]))
        if obj is None:
            continue
        if obj.size != record["size"]:
            return f"{obj} is now {obj.size} bytes, the copy was built from {record['size']}"
        if obj in latest_plan:  # its index was fetched when the state was opened: no new request
            checksum = replica.metas([obj], charge)[0].tail.trailer.file_checksum
            if f"{checksum:016x}" != record["checksum"]:
                return f"{obj} has checksum {checksum:016x}, the copy was built from {record['checksum']}"
    last = str(meta.files[-1]["file"]) if meta.files else None
    if meta.txid > (chains.latest or 0) or (meta.txid not in chains and last not in listed):
        return f"TXID {format_txid(meta.txid)} of {path} is not a state of {replica.storage.url}"
    return None

def _quick_check(path: str) -> str | None:
    uri = f"file:{quote(path)}?mode=ro&immutable=1"
    try:
        db = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        try:
            result = db.execute("PRAGMA quick_check").fetchall()
        finally:
            db.close()
    except apsw.Error as exc:
        return f"{path}: {exc}"
    return None if result == [("ok",)] else f"{path}: quick_check: {result[0][0]}"


def fetch_pages(replica: Replica, files: tuple[LtxObject, ...], winners: Mapping[int, PageLocation], sink: Sink,
                stop: threading.Event, progress: Callable[[int, int], None], charge: Charge) -> None:
    """Give `sink` every winning page of `files`, each file verified; several files at once.
    Raises Stopped as soon as `stop` is set."""
    wanted: dict[LtxObject, dict[int, PageLocation]] = {}
    for pgno, loc in winners.items():
        wanted.setdefault(loc.obj, {})[pgno] = loc
    done = [0]
    total = len(winners)
    progress(0, total)
    progress_lock = threading.Lock()
    failed = threading.Event()

    def one_file(obj: LtxObject) -> None:
        mine = wanted[obj]
        for pgno, page in _file_pages(replica, obj, mine, charge):
            if failed.is_set():
                return  # a sibling failed: its error is the one reported
            if stop.is_set():
                raise Stopped()
            if pgno in mine:
                sink(pgno, page)
                with progress_lock:
                    done[0] += 1
                    progress(done[0], total)

    with ThreadPoolExecutor(FILES_IN_PARALLEL, thread_name_prefix="litestream-hydrate-file") as jobs:
        futures = [jobs.submit(one_file, obj) for obj in files if obj in wanted]
        try:
            for future in futures:
                future.result()
        except BaseException:
            failed.set()  # the other files stop at their next page
            raise

def _file_pages(replica: Replica, obj: LtxObject, mine: Mapping[int, PageLocation],
                charge: Charge) -> Iterable[tuple[int, bytes]]:
    """A small verified file's pages from the shared cache when all are there, else the
    verified whole file."""
    if obj.size <= WHOLE_FILE_LIMIT and replica.verifier.is_verified(replica.metas([obj])[0]):
        cached = {pgno: replica.cache.get(loc.key) for pgno, loc in mine.items()}
        if all(page is not None for page in cached.values()):
            return cached.items()  # type: ignore[return-value]
    return verified_pages(replica, obj, charge)
