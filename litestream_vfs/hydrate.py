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
  the last `FILES_RECORDED`) and ``pending`` (a TXID, only while an update is
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
readers never wait for a writer. Updates larger than `IN_PLACE_LIMIT` are
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
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import threading
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Mapping
from urllib.parse import quote

from .errors import ObjectNotFound
from .hydrate_copy import Sink, Stopped, distrust, fetch_pages
from .pages import PageLocation, merge_page_maps
from .replica import Replica, State
from .storage.base import Counters, LtxObject
from .timeparse import format_txid

#: Updates whose LTX files total at most this many bytes are applied in place (from memory).
IN_PLACE_LIMIT = 16 * 1024 * 1024
#: How many applied LTX files the metadata remembers (the newest ones).
FILES_RECORDED = 64
#: Seconds to wait after a failed build or update before trying again.
RETRY_SECONDS = 5.0
#: At most this long, an open that finds an existing copy waits for it to be checked,
#: so a restart serves its first query locally instead of fetching what is on disk.
CHECK_WAIT_SECONDS = 10.0
#: At most this long, a hydrator waits for the one it replaces (or `stop_all` for each) to stop.
JOIN_SECONDS = 10.0
META_FORMAT = 1
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


@dataclass(frozen=True)
class Meta:
    """The sidecar `<path>.meta.json`: which state of which replica the copy holds."""

    replica: str
    txid: int
    page_size: int
    commit: int
    inode: int
    files: tuple[Mapping[str, object], ...]
    pending: int | None = None

    def dumps(self) -> str:
        data = asdict(self)
        data.update(format=META_FORMAT, txid=format_txid(self.txid), files=list(self.files),
                    pending=None if self.pending is None else format_txid(self.pending))
        return json.dumps(data, indent=1)

    @classmethod
    def load(cls, path: str) -> "Meta | None":
        """The metadata at `path`, or None if it is missing, torn or of another format."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if data.pop("format") != META_FORMAT:
                return None
            pending = data.pop("pending")
            return cls(replica=str(data["replica"]), txid=int(data["txid"], 16),
                       page_size=int(data["page_size"]), commit=int(data["commit"]),
                       inode=int(data["inode"]), files=tuple(data["files"]),
                       pending=None if pending is None else int(pending, 16))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @property
    def db_size(self) -> int:
        return self.page_size * self.commit


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


class Hydrator:
    """Keeps `<path>` equal to the latest state of one replica and serves reads from it."""

    def __init__(self, replica: Replica, path: str, interval: float) -> None:
        self.replica = replica
        self.path = path
        self.meta_path = path + ".meta.json"
        self.partial_path = path + ".partial"
        self.lock_path = path + ".lock"
        self.interval = interval
        #: Requests made by this hydrator (builds, updates, checks); also charged to the replica.
        self.counters = Counters()
        self._status = "starting"
        self._progress: tuple[int, int] | None = None
        self._owner = False
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._txid: int | None = None  # the state readers may take from the file, if any
        self._page_size = 0
        self._gen = 0  # owner's sequence lock: odd while the file is being changed
        self._loaded: tuple[int, int, int] | None = None  # follower: identity of the meta it trusts
        self._meta: Meta | None = None
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
        if os.path.exists(self.meta_path):
            self._checked.wait(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def charge(self) -> tuple[Counters, ...]:
        return (self.counters,)

    # -- reading -------------------------------------------------------------
    @property
    def txid(self) -> int | None:
        """The state the copy holds and readers may use now (None while building or checking)."""
        return self._txid

    def pages(self, state: State, first: int, last: int) -> bytes | None:
        """Pages first..last of `state` read from the copy, or None: read them remotely."""
        txid, fd = self._txid, self._fd
        if txid != state.txid or fd is None or last < first or state.page_size != self._page_size:
            return None
        version = self._version()
        if version is None:
            return None
        size = state.page_size
        try:
            data = os.pread(fd, (last - first + 1) * size, (first - 1) * size)
        except OSError:
            return None
        if self._txid != txid or self._version() != version or len(data) != (last - first + 1) * size:
            return None
        return data

    def _version(self) -> object:
        """What must not change around a read for it to count (None: the copy is changing)."""
        if self._owner:
            gen = self._gen
            return None if gen & 1 else gen
        try:
            st = os.stat(self.meta_path)
        except OSError:
            return None
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        return identity if identity == self._loaded else None

    def describe(self) -> str:
        """`PRAGMA litestream_hydration`: building N% / ready TXID / waiting / error."""
        if self._txid is not None:
            return f"ready {format_txid(self._txid)}"
        if self._progress is not None:
            done, total = self._progress
            return f"building {100 * done // total if total else 100}%"
        return self._status

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
                    self._progress = None
                    self._status = f"error: {exc}"
                    delay = max(RETRY_SECONDS, self.interval)
                    if isinstance(exc, ObjectNotFound):
                        self.replica.refresh(self.charge)
                finally:
                    self._checked.set()
                self._stop.wait(delay)
        finally:
            self._close()

    def _step(self) -> None:
        if not self._owner and self._try_lock():
            self._become_owner()
            self._checked.set()  # a trusted copy serves now; catching up or rebuilding follows
        if self._owner:
            self._catch_up()
        else:
            self._follow()

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
        self._txid = None
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None

    def _set_fd(self, fd: int) -> None:
        """Point the copy's descriptor at a new open file without ever freeing its number."""
        if self._fd is None:
            self._fd = fd
        else:
            os.dup2(fd, self._fd)
            os.close(fd)

    # -- follower --------------------------------------------------------------
    def _follow(self) -> None:
        """Use the copy another process keeps, whenever its metadata says it is ready."""
        try:
            st = os.stat(self.meta_path)
        except FileNotFoundError:
            self._txid, self._status = None, f"waiting for another process to build {self.path}"
            return
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        if identity == self._loaded:
            return
        self._txid = None
        meta = Meta.load(self.meta_path)
        if meta is None or meta.replica != self.replica.storage.url or meta.pending is not None:
            self._status = f"waiting for another process to update {self.path}"
            return
        fd = os.open(self.path, os.O_RDONLY)
        st_db = os.fstat(fd)
        if st_db.st_ino != meta.inode or st_db.st_size != meta.db_size:
            os.close(fd)
            self._status = f"waiting for another process to finish {self.path}"
            return
        self._set_fd(fd)
        self._page_size, self._meta, self._loaded = meta.page_size, meta, identity
        self._txid = meta.txid

    # -- owner -----------------------------------------------------------------
    def _become_owner(self) -> None:
        """Drop follower state, clear a stale partial build, and keep the copy only if trusted."""
        self._txid, self._loaded = None, None
        self._owner = True
        _unlink(self.partial_path)
        self._status = "checking"
        meta = Meta.load(self.meta_path)
        problem = self._distrust(meta)
        if problem is None and meta is not None:
            self._set_fd(os.open(self.path, os.O_RDWR))
            self._meta, self._page_size = meta, meta.page_size
            self._txid = meta.txid
        else:
            self._status = f"rebuilding: {problem}"
            _unlink(self.meta_path)

    def _distrust(self, meta: Meta | None) -> str | None:
        """Why the existing copy must not be used, or None if it holds exactly `meta.txid`."""
        return distrust(self.path, self.meta_path, meta, self.replica, self.charge)

    def _catch_up(self) -> None:
        state = self.replica.latest(self.charge)
        if self._txid == state.txid:
            self._status = "ready"
            return
        chain = None if self._txid is None else chain_after(self.replica.files, self._txid, state.txid)
        if chain is None:
            self._build(state)
        elif sum(obj.size for obj in chain) <= IN_PLACE_LIMIT:
            self._update_in_place(state, chain)
        else:
            self._update_copy(state, chain)

    def _build(self, state: State) -> None:
        """Materialize `state` into `.partial`, then rename it over the copy."""
        self._txid = None
        _unlink(self.meta_path)  # followers stop trusting whatever is at `path`
        winners = self.replica.page_map(state, self.charge)
        self._into_partial(state, state.plan, winners, copy_from=None)
        self._publish(state, state.plan, previous=())

    def _update_copy(self, state: State, chain: tuple[LtxObject, ...]) -> None:
        """A large update: apply it to a copy of the file, then swap the copy in."""
        winners = merge_page_maps(self.replica.metas(chain, self.charge), state.commit)
        self._into_partial(state, chain, winners, copy_from=self.path)
        self._publish(state, chain, previous=self._meta.files if self._meta else ())

    def _into_partial(self, state: State, files: tuple[LtxObject, ...], winners: Mapping[int, PageLocation],
                      copy_from: str | None) -> None:
        if copy_from is None:
            _unlink(self.partial_path)
        else:
            shutil.copyfile(copy_from, self.partial_path)
        try:
            fd = os.open(self.partial_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.ftruncate(fd, state.db_size)
                self._fetch(files, winners, self._writer(fd, state.page_size))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.partial_path, self.path)
            _fsync_dir(self.path)
        finally:
            _unlink(self.partial_path)
        self._gen += 1
        try:
            self._txid = None
            self._set_fd(os.open(self.path, os.O_RDWR))
            self._page_size = state.page_size
        finally:
            self._gen += 1

    def _update_in_place(self, state: State, chain: tuple[LtxObject, ...]) -> None:
        """A small update: verify every page in memory, then write it under the sequence lock."""
        assert self._fd is not None and self._meta is not None
        winners = merge_page_maps(self.replica.metas(chain, self.charge), state.commit)
        pages: dict[int, bytes] = {}
        self._fetch(chain, winners, pages.__setitem__)
        _write_atomically(self.meta_path, replace(self._meta, pending=state.txid).dumps())
        self._gen += 1
        write = self._writer(self._fd, state.page_size)
        try:
            self._txid = None
            for pgno, page in pages.items():
                write(pgno, page)
            os.ftruncate(self._fd, state.db_size)
            os.fsync(self._fd)
        except BaseException:
            self._meta = None  # neither state now: unused (its metadata says `pending`) until rebuilt
            raise
        finally:
            self._gen += 1
        self._publish(state, chain, previous=self._meta.files)

    def _writer(self, fd: int, page_size: int) -> Sink:
        def write(pgno: int, page: bytes) -> None:
            os.pwrite(fd, as_database_page1(page) if pgno == 1 else page, (pgno - 1) * page_size)
        return write

    def _publish(self, state: State, files: tuple[LtxObject, ...], previous: tuple[Mapping[str, object], ...]) -> None:
        """Record what the copy now holds, then let readers use it."""
        metas = self.replica.metas(files, self.charge)
        records = tuple({"file": str(m.obj), "size": m.obj.size,
                         "checksum": f"{m.tail.trailer.file_checksum:016x}"} for m in metas)
        meta = Meta(self.replica.storage.url, state.txid, state.page_size, state.commit,
                    os.stat(self.path).st_ino, (previous + records)[-FILES_RECORDED:])
        _write_atomically(self.meta_path, meta.dumps())
        self._meta, self._page_size, self._progress = meta, state.page_size, None
        self._txid = state.txid
        self._status = "ready"

    def _fetch(self, files: tuple[LtxObject, ...], winners: Mapping[int, PageLocation], sink: Sink) -> None:
        """Give `sink` every winning page of `files`, each file verified; several files at once."""
        def progress(done: int, total: int) -> None:
            self._progress = (done, total)

        fetch_pages(self.replica, files, winners, sink, self._stop, progress, self.charge)

    def acquire(self) -> None:
        """One more open file uses this hydrator (called under the registry lock)."""
        self._refs += 1

    def release(self) -> None:
        """An open file is done with it; the last one stops the background work."""
        with _registry_lock:
            self._refs -= 1
            if self._refs <= 0:
                self.stop()


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
