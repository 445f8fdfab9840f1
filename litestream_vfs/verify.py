"""`verify=`: when a file's whole-file checksum is checked, relative to serving its pages.

Litestream 0.5 files carry no per-page checksum (LZ4 blocks have none either):
only the file checksum in the trailer catches a flipped byte inside a page
body, and it covers the whole file. Per connection:

- ``auto`` (default): a file up to ``replica.WHOLE_FILE_LIMIT`` is fetched
  whole and verified before any page of it is served (one GET, usually
  cheaper than ranges anyway). A larger file is read by ranges and verified by
  one streaming pass on a background thread; a mismatch poisons it.
- ``full``: every file is verified before any page of it is served.
- ``ranges``: larger files are trusted to their frame checks.

A verified file is remembered by identity (level, TXIDs, size, file checksum),
in the persistent cache too when there is one, so the cost is paid once. A
poisoned file is a damaged file (damage.py): plans leave it out, and a state
only it rebuilds fails with an error naming it.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from .damage import identity
from .errors import LitestreamVFSError, LTXError, ReplicaError
from .pages import FileMeta
from .storage.base import LtxObject

if TYPE_CHECKING:
    from .replica import Charge, Replica

MODES = ("auto", "full", "ranges")
#: The background pass's thread runs at this nice value (Linux schedules threads one by one).
BACKGROUND_NICE = 10
DEFAULT_MODE = "auto"


def parse_mode(text: str) -> str:
    """A `verify=` value, or one clear error naming it."""
    mode = text.strip().lower()
    if mode not in MODES:
        raise ReplicaError(f"verify={text!r} is not one of {', '.join(MODES)}")
    return mode


class Verifier:
    """Which files of one replica are verified, and the work that verifies them."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        #: The process's background thread for large files under `auto` (None: verify later, never).
        self.background: BackgroundVerifier | None = None
        self._verified: set[tuple[object, int]] = set()
        #: Verified files by name -> size: the lock-free check on every read (see `all_verified`).
        self._sizes: dict[LtxObject, int] = {}
        #: Files being verified now, by any thread: one download per file, however many readers.
        self._running: dict[LtxObject, threading.Event] = {}
        #: Files the persistent cache did not know as verified (asked once per process).
        self._asked_disk: set[tuple[object, int]] = set()
        self._lock = threading.Lock()

    @staticmethod
    def key(meta: FileMeta) -> tuple[object, int]:
        """A file's identity for verification: level, TXIDs, size and file checksum."""
        return identity(meta.obj), meta.tail.trailer.file_checksum

    def all_verified(self, metas: Sequence[FileMeta]) -> bool:
        """True when every file is known verified at its listed size (no lock: a dict read)."""
        sizes = self._sizes
        return all(sizes.get(meta.obj) == meta.obj.size for meta in metas)

    def is_verified(self, meta: FileMeta) -> bool:
        key = self.key(meta)
        with self._lock:
            if key in self._verified:
                return True
            ask_disk = self.replica.disk is not None and key not in self._asked_disk
            self._asked_disk.add(key)
        if ask_disk and self.replica.disk.is_verified(meta.key):
            with self._lock:
                self._verified.add(key)
                self._sizes[meta.obj] = meta.obj.size
            return True
        return False

    def retain(self, files: Iterable[LtxObject]) -> None:
        """Forget files no longer listed (memory follows the listing, not the process's history)."""
        keep = {identity(o) for o in files}
        with self._lock:
            self._verified = {key for key in self._verified if key[0] in keep}
            self._asked_disk = {key for key in self._asked_disk if key[0] in keep}
            self._sizes = {obj: size for obj, size in self._sizes.items() if identity(obj) in keep}

    def record(self, meta: FileMeta, charge: Charge) -> None:
        """`meta.obj` matched its file checksum: remember it (on disk too) and count it, once."""
        key = self.key(meta)
        with self._lock:
            if key in self._verified:
                return
            self._verified.add(key)
            self._sizes[meta.obj] = meta.obj.size
        if self.replica.disk is not None:
            self.replica.disk.put_verified(meta.key)
        for counters in (*charge, self.replica.counters):
            counters.add(files_verified=1, bytes_verified=meta.obj.size)

    def gate(self, metas: Sequence[FileMeta], mode: str, charge: Charge) -> set[LtxObject]:
        """Before pages of these files are served: verify now what `mode` requires, queue the rest.

        Returns the files whose pages are about to be served unverified.
        """
        pending = [m for m in metas if not self.is_verified(m)]
        if mode == "ranges" or not pending:
            return {m.obj for m in pending}
        from .filemeta import WHOLE_FILE_LIMIT
        now = [m.obj for m in pending if mode == "full" or m.obj.size <= WHOLE_FILE_LIMIT]
        self.replica.executors.run_all([lambda obj=obj: self._verify_now(obj, charge) for obj in now])
        later = [m for m in pending if m.obj not in now]
        if self.background is not None:
            for meta in later:
                self.background.submit(self, meta)
        return {m.obj for m in later}

    def _verify_now(self, obj: LtxObject, charge: Charge) -> None:
        """Verify `obj` before its pages are served; if another thread is at it, wait for its verdict."""
        from .restore import CHUNK_BYTES
        if obj.size <= CHUNK_BYTES:
            work = lambda: self.replica.read_whole(obj, charge)  # noqa: E731
        else:
            work = lambda: self.stream(obj, charge, keep_pages=True)  # noqa: E731
        while not self._exclusively(obj, work, wait=True):
            if self.is_verified(self.replica.metas([obj], charge)[0]):  # metas raises if it was damaged
                return

    def verify_later(self, obj: LtxObject, stop: threading.Event) -> None:
        """The background pass over `obj` (skipped if a reader is verifying it now)."""
        self._exclusively(obj, lambda: self.stream(obj, (), stop=stop, in_flight=0), wait=False)

    def _exclusively(self, obj: LtxObject, work: Callable[[], object], wait: bool) -> bool:
        """Run `work` unless another thread verifies `obj` now; then wait for it if asked. True if run."""
        with self._lock:
            running = self._running.get(obj)
            if running is None:
                mine = self._running[obj] = threading.Event()
        if running is not None:
            if wait:
                running.wait()
            return False
        try:
            work()
        finally:
            with self._lock:
                del self._running[obj]
            mine.set()
        return True

    def stream(self, obj: LtxObject, charge: Charge, keep_pages: bool = False,
               stop: threading.Event | None = None, in_flight: int | None = None) -> None:
        """Read `obj` once from start to end in bounded memory and verify it (keeping its pages if asked)."""
        from .restore import CHUNKS_IN_FLIGHT, verified_pages
        meta = self.replica.metas([obj], charge)[0]
        if self.is_verified(meta):
            return
        index, cache = meta.tail.index, self.replica.cache
        pages = verified_pages(self.replica, obj, charge, CHUNKS_IN_FLIGHT if in_flight is None else in_flight)
        for pgno, page in pages:  # verified_pages records the file when its checksum matched
            if stop is not None and stop.is_set():
                pages.close()
                return
            if keep_pages:
                cache.put((meta.key, index[pgno].offset), page)


class BackgroundVerifier:
    """One named thread of the process that verifies large files, one at a time, after use.

    Low priority by construction: one file at a time, its ranges read one after
    another on this thread (never on the fetch pool that serves queries), in
    bounded memory, at a higher nice value where the OS allows one per thread.
    Started on the first file queued; `stop` ends and joins it.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Verifier, FileMeta]] = queue.Queue()
        self._queued: set[tuple[int, tuple[object, int]]] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, verifier: Verifier, meta: FileMeta) -> None:
        key = (id(verifier), verifier.key(meta))
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
            self._queue.put((verifier, meta))
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="litestream-verify", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)  # this thread only
        except (AttributeError, OSError):
            pass  # not Linux: the thread still runs one file at a time, off the fetch pool
        try:
            while not self._stop.is_set():
                try:
                    verifier, meta = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                try:
                    verifier.verify_later(meta.obj, self._stop)
                except LitestreamVFSError:
                    pass  # poisoned (the damage registry has it) or unreadable now: served files retry
                finally:
                    with self._lock:
                        self._queued.discard((id(verifier), verifier.key(meta)))
                        self._idle.notify_all()
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or being verified (for tests and benchmarks)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._queued, timeout)

    def stop(self) -> None:
        """Stop after the current chunk, drop what is queued, join the thread."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queued.clear()
            self._idle.notify_all()
