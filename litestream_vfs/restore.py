"""Write one state of a replica to a SQLite file, as `litestream restore` does.

Every planned file is read whole (small ones in one GET, large ones as
frame-aligned ranges fetched a few at a time) and its file checksum is
verified before the output is renamed into place: a restore never leaves a
database built from a corrupt file.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

from . import ltx
from .errors import LitestreamVFSError, LTXError
from .ltx.stream import StreamingDecoder
from .replica import Charge, Replica, State
from .storage.base import LtxObject

#: Files up to this size are fetched in one request; larger ones in ranges of this size.
CHUNK_BYTES = 8 * 1024 * 1024
#: Ranges of one large file in flight at once.
CHUNKS_IN_FLIGHT = 4

Progress = Callable[[int, int], None]


def restore(replica: Replica, state: State, output: str, progress: Progress | None = None,
            charge: Charge = ()) -> None:
    """Build `output` (which must not exist) holding exactly `state`.

    A planned file found damaged on the way is left out and the same TXID is
    rebuilt from the other files, from the start (OutOfHistory if none can).
    """
    if os.path.lexists(output):
        raise LitestreamVFSError(f"{output} already exists; refusing to overwrite it")
    partial = f"{output}.partial-{os.getpid()}"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:  # name the file the user asked for, not our temporary one
        raise LitestreamVFSError(f"cannot create {output}: {exc.strerror}") from None
    try:
        try:
            while True:
                try:
                    _write_state(replica, state, fd, progress, charge)
                    break
                except LTXError as exc:
                    if not any(str(o) == exc.name and replica.damage.problem(o) for o in state.plan):
                        raise
                    os.ftruncate(fd, 0)
                    state = replica.state(state.txid, charge)
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.lexists(output):
            raise LitestreamVFSError(f"{output} appeared while restoring; refusing to overwrite it")
        os.rename(partial, output)
    finally:
        if os.path.lexists(partial):
            os.unlink(partial)


def _write_state(replica: Replica, state: State, fd: int, progress: Progress | None, charge: Charge) -> None:
    total = sum(obj.size for obj in state.plan)
    done = 0
    for obj in state.plan:
        for pgno, page in verified_pages(replica, obj, charge):
            if pgno <= state.commit:
                os.pwrite(fd, page, (pgno - 1) * state.page_size)
        done += obj.size
        if progress:
            progress(done, total)
    os.ftruncate(fd, state.db_size)


def verified_pages(replica: Replica, obj: LtxObject, charge: Charge,
                   in_flight: int = CHUNKS_IN_FLIGHT) -> Iterator[tuple[int, bytes]]:
    """(pgno, page) of one file in file order; raises at the end if the file checksum fails.

    Pages of a large file are yielded before its checksum is known, which is
    why `restore` writes to a temporary file and renames only on success. A
    file that fails is marked damaged, so plans leave it out from then on.
    `in_flight` ranges of a large file are fetched at once on the replica's
    pool; 0 reads them one by one on the calling thread.
    """
    try:
        yield from _file_pages(replica, obj, charge, in_flight)
    except LTXError as exc:
        replica.mark_damaged(obj, exc)
        raise


def _file_pages(replica: Replica, obj: LtxObject, charge: Charge, in_flight: int) -> Iterator[tuple[int, bytes]]:
    if obj.size <= CHUNK_BYTES:
        decoded = ltx.decode_file(replica.read_object(obj, charge), str(obj))
        replica.check_header(obj, decoded.header)
        yield from decoded.pages.items()
        replica.verifier.record(replica.meta.make(obj, decoded.header, decoded.tail), charge)
        return
    meta = replica.metas([obj], charge)[0]
    head = replica.read_range(obj, 0, ltx.HEADER_SIZE, charge)
    decoder = StreamingDecoder(head, meta.tail, obj.size, str(obj))
    replica.check_header(obj, decoder.header)
    ranges = list(_frame_ranges(meta.tail, decoder.frames_end))
    if not in_flight:
        for start, end in ranges:
            yield from decoder.feed(start, replica.read_range(obj, start, end - start, charge))
    else:
        futures: list = [replica.executors.io.submit(replica.read_range, obj, start, end - start, charge)
                         for start, end in ranges[:in_flight]]
        for i, (start, _) in enumerate(ranges):
            data = futures[i].result()
            futures[i] = None  # release the bytes as soon as they are decoded
            if i + in_flight < len(ranges):
                nxt = ranges[i + in_flight]
                futures.append(replica.executors.io.submit(replica.read_range, obj, nxt[0], nxt[1] - nxt[0], charge))
            yield from decoder.feed(start, data)
    decoder.finish(replica.read_range(obj, decoder.frames_end, obj.size - decoder.frames_end, charge))
    replica.verifier.record(meta, charge)


def _frame_ranges(tail: ltx.Tail, frames_end: int) -> Iterator[tuple[int, int]]:
    """Split [first frame, end of frames) into frame-aligned ranges of about CHUNK_BYTES."""
    start = end = None
    for entry in tail.index.values():
        if start is None:
            start = entry.offset
        elif entry.offset + entry.size - start > CHUNK_BYTES:
            yield start, end
            start = entry.offset
        end = entry.offset + entry.size
    if start is not None:
        yield start, end
