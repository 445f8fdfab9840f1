"""The owner's jobs: keep the local copy equal to the replica's latest state (building,
updating in place or through `.partial`, and publishing the metadata; see `hydrate`).

Every change to the file runs inside `LocalCopy.changing`, and readers are let back
in only by `LocalCopy.serve` once the metadata records the new state.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from typing import Callable, Iterable, Mapping

from .hydrate_copy import Sink, distrust, fetch_pages
from .hydrate_local import LocalCopy, Meta
from .pages import PageLocation, merge_page_maps
from .replica import Charge, Replica, State
from .storage.base import LtxObject

#: Updates whose LTX files total at most this many bytes are applied in place (from memory).
IN_PLACE_LIMIT = 16 * 1024 * 1024
#: How many applied LTX files the metadata remembers (the newest ones).
FILES_RECORDED = 64


def chain_after(files: Iterable[LtxObject], base: int, target: int) -> tuple[LtxObject, ...] | None:
    """The fewest bytes of LTX files that turn state `base` into state `target`, or None.

    A file spanning [min, max] may be applied to any state r with min-1 <= r < max,
    not only min-1: state r differs from state min-1 only in pages changed in
    (min-1, r], and the file holds the newest version of every page changed in
    its span. So a compacted file that starts before `base` still continues it.
    """
    best: dict[int, tuple[tuple[int, int], LtxObject | None, int]] = {base: ((0, 0), None, base)}
    for obj in sorted(files, key=lambda o: (o.max_txid, o.level, o.min_txid)):
        if not base < obj.max_txid <= target:
            continue
        starts = [t for t in best if obj.min_txid - 1 <= t < obj.max_txid]
        if not starts:
            continue
        start = min(starts, key=lambda t: best[t][0])
        bytes_, count = best[start][0]
        cost = (bytes_ + obj.size, count + 1)
        if obj.max_txid not in best or cost < best[obj.max_txid][0]:
            best[obj.max_txid] = (cost, obj, start)
    if target not in best:
        return None
    chain: list[LtxObject] = []
    txid = target
    while txid != base:
        _, obj, txid = best[txid]
        assert obj is not None
        chain.append(obj)
    return tuple(reversed(chain))


def as_database_page1(page: bytes) -> bytes:
    """Page 1 with bytes 18/19 = 1: the copy is a rollback-journal database, never looks for a WAL."""
    return page[:18] + b"\x01\x01" + page[20:] if len(page) >= 20 else page


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _writer(fd: int, page_size: int) -> Sink:
    def write(pgno: int, page: bytes) -> None:
        os.pwrite(fd, as_database_page1(page) if pgno == 1 else page, (pgno - 1) * page_size)
    return write


class CopyOwner:
    """The one process that holds `<path>.lock`: brings `copy` to the replica's latest state."""

    def __init__(self, replica: Replica, copy: LocalCopy, stop: threading.Event, charge: Charge,
                 report: Callable[[str], None], progress: Callable[[int, int], None]) -> None:
        self.replica = replica
        self.copy = copy
        self.partial_path = copy.path + ".partial"
        self._stop = stop
        self._charge = charge
        self._report = report  # a status for `PRAGMA litestream_hydration`
        self._progress = progress  # (pages written, pages to write) of the running build

    def take_over(self) -> None:
        """Drop follower state, clear a stale partial build, and keep the copy only if trusted."""
        copy = self.copy
        copy.take_ownership()
        _unlink(self.partial_path)
        self._report("checking")
        meta = Meta.load(copy.meta_path)
        problem = distrust(copy.path, copy.meta_path, meta, self.replica, self._charge)
        if problem is None and meta is not None:
            copy.serve(meta, os.open(copy.path, os.O_RDWR))
        else:
            self._report(f"rebuilding: {problem}")
            _unlink(copy.meta_path)

    def catch_up(self) -> None:
        """Apply what the replica gained since the copy's state (or build it afresh)."""
        state = self.replica.latest(self._charge)
        base = self.copy.txid
        if base == state.txid:
            self._report("ready")
            return
        chain = None if base is None else chain_after(self.replica.files, base, state.txid)
        if chain is None:
            self._build(state)
        elif sum(obj.size for obj in chain) <= IN_PLACE_LIMIT:
            self._update_in_place(state, chain)
        else:
            self._update_copy(state, chain)

    def _build(self, state: State) -> None:
        """Materialize `state` into `.partial`, then rename it over the copy."""
        self.copy.withdraw()
        _unlink(self.copy.meta_path)  # followers stop trusting whatever is at `path`
        winners = self.replica.page_map(state, self._charge)
        self._into_partial(state, state.plan, winners, copy_from=None)
        self._publish(state, state.plan, previous=())

    def _update_copy(self, state: State, chain: tuple[LtxObject, ...]) -> None:
        """A large update: apply it to a copy of the file, then swap the copy in."""
        winners = merge_page_maps(self.replica.metas(chain, self._charge), state.commit)
        self._into_partial(state, chain, winners, copy_from=self.copy.path)
        meta = self.copy.meta
        self._publish(state, chain, previous=meta.files if meta else ())

    def _into_partial(self, state: State, files: tuple[LtxObject, ...], winners: Mapping[int, PageLocation],
                      copy_from: str | None) -> None:
        path = self.copy.path
        if copy_from is None:
            _unlink(self.partial_path)
        else:
            shutil.copyfile(copy_from, self.partial_path)
        try:
            fd = os.open(self.partial_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.ftruncate(fd, state.db_size)
                self._fetch(files, winners, _writer(fd, state.page_size))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.partial_path, path)
            _fsync_dir(path)
        finally:
            _unlink(self.partial_path)
        with self.copy.changing():
            self.copy.set_fd(os.open(path, os.O_RDWR))

    def _update_in_place(self, state: State, chain: tuple[LtxObject, ...]) -> None:
        """A small update: verify every page in memory, then write it under the sequence lock."""
        copy, meta = self.copy, self.copy.meta
        fd = copy.fd
        assert fd is not None and meta is not None
        winners = merge_page_maps(self.replica.metas(chain, self._charge), state.commit)
        pages: dict[int, bytes] = {}
        self._fetch(chain, winners, pages.__setitem__)
        _write_atomically(copy.meta_path, replace(meta, pending=state.txid).dumps())
        write = _writer(fd, state.page_size)
        with copy.changing():
            try:
                for pgno, page in pages.items():
                    write(pgno, page)
                os.ftruncate(fd, state.db_size)
                os.fsync(fd)
            except BaseException:
                copy.meta = None  # neither state now: unused (its metadata says `pending`) until rebuilt
                raise
        self._publish(state, chain, previous=meta.files)

    def _publish(self, state: State, files: tuple[LtxObject, ...], previous: tuple[Mapping[str, object], ...]) -> None:
        """Record what the copy now holds, then let readers use it."""
        metas = self.replica.metas(files, self._charge)
        records = tuple({"file": str(m.obj), "size": m.obj.size,
                         "checksum": f"{m.tail.trailer.file_checksum:016x}"} for m in metas)
        meta = Meta(self.replica.storage.url, state.txid, state.page_size, state.commit,
                    os.stat(self.copy.path).st_ino, (previous + records)[-FILES_RECORDED:])
        _write_atomically(self.copy.meta_path, meta.dumps())
        self.copy.serve(meta)
        self._report("ready")

    def _fetch(self, files: tuple[LtxObject, ...], winners: Mapping[int, PageLocation], sink: Sink) -> None:
        """Give `sink` every winning page of `files`, each file verified; several files at once."""
        fetch_pages(self.replica, files, winners, sink, self._stop, self._progress, self._charge)
