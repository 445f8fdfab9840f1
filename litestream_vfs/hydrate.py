"""Hydration: a local SQLite copy of a replica's latest state, built in the background.

Opt in per connection with the URI parameter ``hydrate=<path>`` (``hydrate=off``
disables it), or for every connection with ``litestream_vfs.register(hydrate_dir=DIR)``,
which names each copy ``DIR/<label>.<16 hex of sha256(replica URL)>.db``.
Connections serve reads through the remote path from the first query; once the
copy holds exactly the state a read transaction is pinned to, that
transaction's reads come from the local file (``os.pread``). Other states (time
travel, or a newer state not applied yet) keep using the remote path.

Files beside ``<path>``:

- ``<path>``: a normal rollback-journal SQLite database (page 1 bytes 18/19 = 1)
  holding exactly the state recorded in the metadata; open it directly if you like.
- ``<path>.meta.json``: ``replica`` (URL), ``txid``, ``page_size``, ``commit``,
  ``inode`` of ``<path>``, ``files`` (the LTX files applied, as
  ``{"file": "L9/<name>", "size", "checksum"}`` with the trailer's file checksum;
  the last `hydrate_owner.FILES_RECORDED`) and ``pending`` (a TXID, only while an update is
  written in place). Replaced atomically (write, fsync, rename).
- ``<path>.partial``: a build (or a large update) in progress; never read.
- ``<path>.lock``: ``flock``-ed by the one process, the *owner*, that builds and
  updates the copy. Other processes are *followers*: they read the copy
  (read-only) whenever its metadata says it is ready, and take over the lock
  if the owner goes away.

Building: the owner writes every page of the latest state's plan into
``<path>.partial`` — whole LTX files (8 MiB ranges for large ones), several
files at once, each page written once by the newest file that holds it, every
file's checksum verified (`restore.verified_pages`) — then fsyncs and renames
it over ``<path>``: a kill or a full disk only ever affects ``.partial``.

Updating, and why readers never see a half-applied state: new states found by
polling are applied from the LTX files after the copy's TXID only. All their
pages are fetched and verified into memory first; then the metadata is marked
``pending``, the pages are written in place, and the metadata is replaced
again. Readers use a sequence-lock check instead of waiting: a reader takes the
copy's version (in the owner: a counter that is odd while the file changes; in
a follower: the identity of the metadata file) and TXID before ``pread`` and
re-checks both after; any change and the read is served remotely instead. A
state is therefore only ever read entirely from one source that holds exactly
it, and nobody blocks: writers never wait for readers to leave an old TXID,
readers never wait for a writer. Updates larger than `hydrate_owner.IN_PLACE_LIMIT` are
applied to a copy of the file (``.partial``) and renamed into place instead.

Restart: the owner trusts an existing copy only if the metadata names the same
replica URL, no update was pending, the file is the same inode with size
``commit * page_size``, page 1 is a sane SQLite header, ``PRAGMA quick_check``
passes, the recorded files still listed have the same sizes (and checksums,
where the file's index is already in memory), and its TXID is still a state of
the replica (or the last file that built it is still there). It then fetches
only the files after that TXID. Anything else is rebuilt from scratch. An open
that finds metadata waits (up to `CHECK_WAIT_SECONDS`) for that check, so after
a restart even the first query is read locally.

Progress: ``PRAGMA litestream_hydration`` answers ``off``, ``starting``,
``checking``, ``rebuilding: <why>``, ``building 42%``, ``ready <16-hex TXID>``
(the state the copy holds: reads pinned to it are local), ``waiting for another
process ...`` (a follower before the copy exists) or ``error: <message>``
(retried every `RETRY_SECONDS`; reads stay remote meanwhile).

Roles: `Hydrator` (here) runs the background thread, takes the lock and counts
the connections using the copy; `hydrate_local.LocalCopy` is what readers read
(descriptor, TXID, the sequence lock, and following another process's copy);
`hydrate_owner.CopyOwner` builds and updates it; `hydrate_copy` judges a copy
on disk and streams verified pages. The registry below gives each (replica,
path) one hydrator per process.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
from urllib.parse import quote

from .errors import ObjectNotFound
from .hydrate_copy import Stopped
from .hydrate_local import LocalCopy
from .hydrate_owner import CopyOwner
from .replica import Replica
from .storage.base import Counters
from .timeparse import format_txid

#: Seconds to wait after a failed build or update before trying again.
RETRY_SECONDS = 5.0
#: At most this long, an open that finds an existing copy waits for it to be checked,
#: so a restart serves its first query locally instead of fetching what is on disk.
CHECK_WAIT_SECONDS = 10.0
#: At most this long, a hydrator waits for the one it replaces (or `stop_all` for each) to stop.
JOIN_SECONDS = 10.0
_OFF = {"off", "0", "false", "no"}


def hydration_path(replica_url: str, uri_value: str | None, default_dir: str | None) -> str | None:
    """The copy's path: the URI parameter, else a file named from the URL under `default_dir`."""
    if uri_value:
        return None if uri_value.lower() in _OFF else os.path.abspath(uri_value)
    if not default_dir:
        return None
    digest = hashlib.sha256(replica_url.encode()).hexdigest()[:16]
    label = os.path.basename(replica_url.rstrip("/").split("?")[0]) or "replica"
    return os.path.join(os.path.abspath(default_dir), f"{quote(label, safe='')}.{digest}.db")


class Hydrator:
    """The background thread that keeps one local copy: as its owner when this process holds
    the lock, else as a follower; counts its users and reports its progress."""

    def __init__(self, replica: Replica, path: str, interval: float) -> None:
        self.replica = replica
        self.path = path
        self.lock_path = path + ".lock"
        self.interval = interval
        #: What readers read (`copy.pages`).
        self.copy = LocalCopy(path)
        #: Requests made by this hydrator (builds, updates, checks); also charged to the replica.
        self.counters = Counters()
        self._status = "starting"
        self._progress: tuple[int, int] | None = None
        self._owner: CopyOwner | None = None  # set once this process holds the lock
        self._lock_fd: int | None = None
        self._refs = 0
        self._stop = threading.Event()
        #: The hydrator this one replaces (same copy): joined by our thread before it starts,
        #: so that an open never waits for it.
        self.previous: Hydrator | None = None
        self._checked = threading.Event()  # set once the existing copy (if any) was judged
        self._thread = threading.Thread(target=self._run, name=f"litestream-hydrate {path}", daemon=True)

    # -- lifetime ----------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        """Ask the background thread to stop (at its next page or wait)."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_checked(self, timeout: float) -> None:
        """Give the background thread a moment to judge an existing copy before the first read."""
        if os.path.exists(self.copy.meta_path):
            self._checked.wait(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def charge(self) -> tuple[Counters, ...]:
        return (self.counters,)

    def acquire(self) -> None:
        """One more open file uses this hydrator (called under the registry lock)."""
        self._refs += 1

    def release(self) -> None:
        """An open file is done with it; the last one stops the background work."""
        with _registry_lock:
            self._refs -= 1
            if self._refs <= 0:
                self.stop()

    # -- status --------------------------------------------------------------
    @property
    def txid(self) -> int | None:
        """The state the copy holds and readers may use now (None while building or checking)."""
        return self.copy.txid

    @property
    def owns(self) -> bool:
        """True once this process holds the lock and keeps the copy."""
        return self._owner is not None

    def describe(self) -> str:
        """`PRAGMA litestream_hydration`: building N% / ready TXID / waiting / error."""
        txid = self.copy.txid
        if txid is not None:
            return f"ready {format_txid(txid)}"
        if self._progress is not None:
            done, total = self._progress
            return f"building {100 * done // total if total else 100}%"
        return self._status

    def _report(self, status: str) -> None:
        self._progress, self._status = None, status

    def _set_progress(self, done: int, total: int) -> None:
        self._progress = (done, total)

    # -- background work -----------------------------------------------------
    def _run(self) -> None:
        if self.previous is not None:  # let it release the lock and file before we check them
            self.previous.join(JOIN_SECONDS)
            self.previous = None
        try:
            while not self._stop.is_set():
                delay = self.interval
                try:
                    self._step()
                except Stopped:
                    break
                except Exception as exc:  # noqa: BLE001 - keep serving remotely, retry later
                    self._report(f"error: {exc}")
                    delay = max(RETRY_SECONDS, self.interval)
                    if isinstance(exc, ObjectNotFound):
                        self.replica.refresh(self.charge)
                finally:
                    self._checked.set()
                self._stop.wait(delay)
        finally:
            self._close()

    def _step(self) -> None:
        if self._owner is None and self._try_lock():
            self._owner = CopyOwner(self.replica, self.copy, self._stop, self.charge,
                                    self._report, self._set_progress)
            self._owner.take_over()
            self._checked.set()  # a trusted copy serves now; catching up or rebuilding follows
        if self._owner is not None:
            self._owner.catch_up()
        else:
            waiting = self.copy.follow(self.replica.storage.url)
            if waiting is not None:
                self._report(waiting)

    def _try_lock(self) -> bool:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        self._lock_fd = fd
        return True

    def _close(self) -> None:
        self.copy.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._lock_fd = None


_hydrators: dict[tuple[str, str], Hydrator] = {}
_registry_lock = threading.Lock()


def serve_pages_locally(replica: Replica) -> None:
    """Index loads of a hydrated replica read no frames speculatively (a large file's header
    comes without the 64 KiB after it): the local copy serves pages, so a restart with a
    valid copy fetches no page data it does not need."""
    replica.meta.index_only = True


def hydrator_for(replica: Replica, path: str, interval: float) -> Hydrator:
    """The process's one hydrator for (replica, path), started on first use; call `release()` when done."""
    key = (replica.storage.url, path)
    serve_pages_locally(replica)
    with _registry_lock:
        hydrator = _hydrators.get(key)
        if hydrator is None or hydrator.stopping:
            previous, hydrator = hydrator, Hydrator(replica, path, interval)
            hydrator.previous = previous
            _hydrators[key] = hydrator
            hydrator.start()
        hydrator.acquire()
    hydrator.wait_checked(CHECK_WAIT_SECONDS)
    return hydrator


def stop_all(timeout: float = JOIN_SECONDS) -> list[str]:
    """Stop every hydrator of the process and join its thread; names of threads still alive."""
    with _registry_lock:
        hydrators = list(_hydrators.values())
        _hydrators.clear()
    for hydrator in hydrators:
        hydrator.stop()
    for hydrator in hydrators:
        hydrator.join(timeout)
    return [f"litestream-hydrate {h.path}" for h in hydrators if h.alive]
