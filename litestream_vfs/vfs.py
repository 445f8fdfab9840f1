"""The APSW glue: the `litestream` VFS and its read-only database file.

Kept thin on purpose: every decision about files, states and pages lives in
`replica`/`pages`, and which state a connection reads in `read_position`; this
module maps SQLite's calls onto them (one state pinned per read transaction)
and answers the litestream PRAGMAs.
"""

from __future__ import annotations

import struct
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import apsw

from .errors import LitestreamVFSError, OutOfHistory, ReplicaError
from .timeparse import format_time, format_txid, is_latest, parse_time, parse_txid

if TYPE_CHECKING:  # the machinery loads at the first open, not when the VFS is registered
    from .hydrate import Hydrator
    from .poller import Poller
    from .read_position import Target
    from .replica import Replica, State
    from .storage.base import Counters

VFS_NAME = "litestream"
_NONE, _SHARED = apsw.SQLITE_LOCK_NONE, apsw.SQLITE_LOCK_SHARED
#: File-control op code that hands the open `ReplicaFile` to Python code (see `file_of`).
FCNTL_GET_FILE = 0x7A11
_PAGE1_PATCH_END = 100


def sqlite_error(exc: BaseException, label: str) -> BaseException:
    """What SQLite's caller sees for a failure inside the VFS: always an `apsw.Error` with a message.

    Our own errors stay catchable as what they are too (an `apsw.SQLError` that is also,
    say, an `OutOfHistory`); anything unexpected becomes an `apsw.IOError` naming it.
    """
    if isinstance(exc, apsw.Error):
        return exc
    if isinstance(exc, LitestreamVFSError):
        kind = _sqlite_class(type(exc))
        wrapped = kind.__new__(kind, *exc.args)  # the same message and attributes, no second __init__
        wrapped.__dict__.update(exc.__dict__)
        return wrapped
    return apsw.IOError(f"litestream: reading {label} failed: {type(exc).__name__}: {exc}")


_classes: dict[type, type] = {}


def _sqlite_class(kind: type) -> type:
    found = _classes.get(kind)
    if found is None:
        found = _classes[kind] = type(kind.__name__, (apsw.SQLError, kind), {"__module__": kind.__module__})
    return found


class ReplicaFile:
    """One SQLite main-database handle on one replica; `position` says which state it reads."""

    def __init__(self, label: str, replica: Replica, poller: Poller, target: Target,
                 max_lag: float | None = None, hydrator: Hydrator | None = None,
                 verify: str | None = None, listing_age: float | None = None) -> None:
        self.label = label
        self.replica = replica
        self.poller = poller
        #: Set when the connection asked for a local copy (hydrate.py).
        self.hydrator = hydrator
        #: `verify=` of this connection (verify.py; None: the process default).
        self.verify = verify
        #: Called with the replica when the file closes (the process registry's `release`).
        self.release: Callable[[Replica], None] = lambda replica: None
        #: Runs the close's work on shared state (the process's `LateCloser.run`: not inside
        #: a garbage collection, which may have interrupted this thread inside our locks).
        self.run_close: Callable[[Callable[[], None]], None] = lambda work: work()
        from .ltx import lock_page  # the machinery loads at the first open, not with the VFS
        from .read_position import ReadPosition
        from .readahead import ReadAhead
        from .staleness import Freshness
        from .storage.base import Counters

        #: `max_lag` and the polling figures `litestream_stats` shows.
        self.freshness = Freshness(replica, poller, max_lag)

        self._lock_page_of = lock_page

        self.counters = Counters()
        self.readahead = ReadAhead()
        self._lock_level = apsw.SQLITE_LOCK_NONE
        #: Following `latest`, at a TXID or at a time; the state pinned per read transaction.
        #: Open-time errors (empty replica, bad TXID) surface here.
        self.position = ReadPosition(replica, poller, self.freshness, target, self.charge, listing_age)
        #: Page 1 as served for one state and generation: SQLite re-reads its header at every transaction.
        self._page1: tuple[State, int, bytes] | None = None

    @property
    def charge(self) -> tuple[Counters, ...]:
        return (self.counters,)

    @property
    def following(self) -> bool:
        return self.position.following

    @property
    def state(self) -> State:
        """The pinned state inside a transaction, else the one the next transaction will see."""
        return self.position.state

    # -- SQLite file methods ---------------------------------------------
    # Every failure leaves as `sqlite_error(...)`: an apsw error with a message, never a raw KeyError.
    def xLock(self, level: int) -> None:
        if level >= _SHARED and self._lock_level == _NONE:  # a read transaction begins
            try:
                self.position.begin()
            except Exception as exc:
                raise sqlite_error(exc, self.label) from exc
        self._lock_level = level

    def xUnlock(self, level: int) -> None:
        self._lock_level = level
        if level == _NONE:
            self.position.pinned = None  # the read transaction is over: the next may see another state

    def xCheckReservedLock(self) -> bool:
        return False

    def xFileSize(self) -> int:
        position = self.position
        position.answered = True
        return (position.pinned or position.current).db_size

    def xRead(self, amount: int, offset: int) -> bytes:
        position = self.position
        state, generation = position.pinned or position.current, position.generation
        cached = self._page1
        if cached is not None and cached[0] is state and cached[1] == generation \
                and offset + amount <= len(cached[2]):
            position.answered = True
            return cached[2][offset:offset + amount]  # the change counter, read at every transaction
        try:
            try:
                data = self._read(state, generation, amount, offset)
            except OutOfHistory:  # retention removed the state before this transaction answered?
                if not position.move_unanswered():
                    raise
                data = self._read(position.pinned, position.generation, amount, offset)
        except Exception as exc:
            raise sqlite_error(exc, self.label) from exc
        position.answered = True
        return data

    def _read(self, state: State, generation: int, amount: int, offset: int) -> bytes:
        size = state.page_size
        first, last = offset // size + 1, (offset + amount - 1) // size + 1
        lock_page = self._lock_page_of(size)
        blob = self.hydrator.copy.pages(state, first, min(last, state.commit)) if self.hydrator else None
        if blob is None:
            wanted = [p for p in range(first, min(last, state.commit) + 1) if p != lock_page]
            pages = self.replica.read_pages(state, wanted, self.charge, self.readahead, self.verify)
            zero = bytes(size)
            blob = b"".join(pages.get(p, zero) for p in range(first, min(last, state.commit) + 1))
        if first == 1 and blob:
            blob = patch_page1(blob, state, generation)
            if last == 1:
                self._page1 = (state, generation, blob)
        start = offset - (first - 1) * size
        return blob[start:start + amount]  # shorter than asked past the end: SQLite zero-fills

    def xWrite(self, data: bytes, offset: int) -> None:
        raise apsw.ReadOnlyError(f"{self.label} is a read-only Litestream replica")

    def xTruncate(self, size: int) -> None:
        raise apsw.ReadOnlyError(f"{self.label} is a read-only Litestream replica")

    def xSync(self, flags: int) -> None:
        return None

    def xSectorSize(self) -> int:
        return 4096

    def xDeviceCharacteristics(self) -> int:
        return 0

    def xClose(self) -> None:
        self.run_close(self._detach)

    def _detach(self) -> None:
        """Stop following, give back the local copy and the replica (shared state, under their locks)."""
        self.position.close()
        if self.hydrator is not None:
            self.hydrator.release()
            self.hydrator = None
        self.release(self.replica)

    def xFileControl(self, op: int, ptr: int) -> bool:
        if op == apsw.SQLITE_FCNTL_PRAGMA:
            return self._pragma(apsw.VFSFcntlPragma(ptr))
        if op == FCNTL_GET_FILE:
            import ctypes

            ctypes.py_object.from_address(ptr).value["file"] = self
            return True
        return False

    # -- PRAGMAs ----------------------------------------------------------
    def _pragma(self, pragma: Any) -> bool:
        name = pragma.name.lower()
        handler = PRAGMAS.get(name)
        if handler is None:
            return False
        try:
            pragma.result = handler(self, pragma.value)
        except LitestreamVFSError as exc:
            raise apsw.SQLError(f"PRAGMA {name}: {exc}") from None
        except Exception as exc:
            raise sqlite_error(exc, self.label) from exc
        return True


def _travel(file: ReplicaFile, value: str | None, move: Callable[[str], object]) -> State:
    """Apply a set (`latest`/`now` follows again), then report the state being read."""
    if value is not None:
        if is_latest(value):
            file.position.follow_latest()
        else:
            move(value)
    return file.state


def _pragma_time(file: ReplicaFile, value: str | None) -> str:
    return format_time(_travel(file, value, lambda v: file.position.travel_to_time(parse_time(v))).timestamp)


def _pragma_txid(file: ReplicaFile, value: str | None) -> str:
    return format_txid(_travel(file, value, lambda v: file.position.travel_to_txid(parse_txid(v))).txid)


def _pragma_lag(file: ReplicaFile, value: str | None) -> str:
    if value is not None:
        raise ReplicaError("litestream_lag is read-only")
    newest = file.replica.latest(file.charge).timestamp
    return f"{(datetime.now(timezone.utc) - newest).total_seconds():.3f}"


def _pragma_hydration(file: ReplicaFile, value: str | None) -> str:
    if value is not None:
        raise ReplicaError("litestream_hydration is read-only: open with ?hydrate=PATH")
    return file.hydrator.describe() if file.hydrator else "off"


PRAGMAS = {
    "litestream_hydration": _pragma_hydration,
    "litestream_time": _pragma_time,
    "litestream_txid": _pragma_txid,
    "litestream_lag": _pragma_lag,
}


def patch_page1(blob: bytes, state: State, generation: int = 0) -> bytes:
    """Make page 1 describe a rollback-journal database whose version is this state.

    Bytes 18/19 = 1 so SQLite never looks for a WAL; the change counter (24) and
    version-valid-for (92) come from the TXID (and `generation`, bumped when pages
    served earlier came from a file since found damaged) so SQLite drops its page
    cache whenever they change; 28 holds the state's page count.
    """
    head = bytearray(blob[:_PAGE1_PATCH_END])
    if len(head) < _PAGE1_PATCH_END:
        return blob
    version = (state.txid ^ (generation << 24)) & 0xFFFFFFFF
    head[18] = head[19] = 1
    struct.pack_into(">II", head, 24, version, state.commit)
    struct.pack_into(">I", head, 92, version)
    return bytes(head) + blob[_PAGE1_PATCH_END:]


class LitestreamVFS(apsw.VFS):
    """Opens main databases as `ReplicaFile`s; everything else goes to the default VFS."""

    def __init__(self) -> None:
        super().__init__(VFS_NAME, "")

    def xOpen(self, name: Any, flags: list[int]) -> Any:
        if not flags[0] & apsw.SQLITE_OPEN_MAIN_DB or name is None:
            return apsw.VFSFile("", name, flags)
        flags[1] = (flags[0] | apsw.SQLITE_OPEN_READONLY) & ~(apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        filename = name.filename() if isinstance(name, apsw.URIFilename) else str(name)
        param = (lambda key: name.uri_parameter(key)) if isinstance(name, apsw.URIFilename) else (lambda key: None)
        try:
            return open_file(filename, param)
        except Exception as exc:
            raise sqlite_error(exc, filename) from exc

    def xAccess(self, pathname: str, flags: int) -> bool:
        return False  # no journal, no WAL, nothing beside a replica

    def xFullPathname(self, name: str) -> str:
        return name

    def xDelete(self, name: str, syncdir: bool) -> None:
        raise apsw.ReadOnlyError(f"{name}: the litestream VFS never deletes anything")


def open_file(filename: str, param: Callable[[str], str | None]) -> ReplicaFile:
    """A `ReplicaFile` for one open; every option read from the URI stays with this connection."""
    from .process import PROCESS  # the first open loads the machinery

    url = PROCESS.replica_url_for(filename, param("replica"))
    if not url:
        raise ReplicaError(f"no replica for {filename!r}: add ?replica=URL to the file name, "
                           "map it with litestream_vfs.register(replicas=...), "
                           "or set LITESTREAM_REPLICA_URL")
    from .verify import parse_mode

    verify = parse_mode(param("verify")) if param("verify") else None
    from .staleness import parse_seconds

    max_lag = parse_seconds("max_lag", param("max_lag"), PROCESS.settings.max_lag)
    replica, poller = PROCESS.acquire(url, filename.rsplit("/", 1)[-1],
                                      param("cache_dir") or PROCESS.settings.cache_dir)
    file: ReplicaFile | None = None
    try:
        txid_text, time_text = param("litestream_txid"), param("litestream_time")
        target = None
        if txid_text and not is_latest(txid_text):
            target = parse_txid(txid_text)
        elif time_text and not is_latest(time_text):
            target = parse_time(time_text)
        hydrate = None
        if param("hydrate") or PROCESS.settings.hydrate_dir:
            from .hydrate import hydration_path, hydrator_for, serve_pages_locally

            hydrate = hydration_path(replica.storage.url, param("hydrate"), PROCESS.settings.hydrate_dir)
            if hydrate:
                serve_pages_locally(replica)
        file = ReplicaFile(filename, replica, poller, target, max_lag, verify=verify,
                           listing_age=PROCESS.settings.poll_seconds)
        file.release = PROCESS.release
        file.run_close = PROCESS.late_closer.run
        if hydrate:
            file.hydrator = hydrator_for(replica, hydrate, PROCESS.settings.poll_seconds)
        return file
    except BaseException:
        if file is not None:
            file.xClose()
        else:
            PROCESS.release(replica)
        raise


def file_of(connection: apsw.Connection, schema: str = "main") -> ReplicaFile:
    """The `ReplicaFile` behind a schema of a connection (ReplicaError if it is not one)."""
    import ctypes

    box: dict[str, Any] = {}
    holder = ctypes.py_object(box)
    understood = connection.file_control(schema, FCNTL_GET_FILE, ctypes.addressof(holder))
    if not understood or "file" not in box:
        raise ReplicaError(f"schema {schema!r} is not opened with the {VFS_NAME} VFS")
    return box["file"]


_registered: LitestreamVFS | None = None
_register_lock = threading.Lock()


def ensure_registered() -> LitestreamVFS:
    """Register the VFS once per process (importing the package does this)."""
    global _registered
    with _register_lock:
        if _registered is None:
            _registered = LitestreamVFS()
        return _registered
