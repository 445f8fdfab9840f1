"""The local copy as readers see it: its descriptor, the state it holds, and the check
that makes a read from it count (the on-disk contract is in `hydrate`).

`LocalCopy.pages` is the only read path. It never blocks: it takes the copy's
version and TXID, reads with `os.pread`, and checks both again; any change and
the caller reads remotely instead. The version is, in the owner, a counter that
`changing` makes odd while the file changes; in a follower, the identity of the
metadata file it loaded. So a state is only ever read entirely from a file that
holds exactly it.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Mapping

from .replica import State
from .timeparse import format_txid

META_FORMAT = 1


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


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_mtime_ns, st.st_size


class LocalCopy:
    """The file at `path` that reads may come from, and which state (if any) they may take from it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.meta_path = path + ".meta.json"
        #: What the file holds, as last loaded or written (None: unknown or mid-update).
        self.meta: Meta | None = None
        #: True in the owner (this process writes the file), False in a follower.
        self.owned = False
        self._fd: int | None = None
        self._txid: int | None = None  # the state readers may take from the file, if any
        self._page_size = 0
        self._gen = 0  # owner's sequence lock: odd while the file is being changed
        self._loaded: tuple[int, int, int] | None = None  # follower: identity of the meta it trusts

    # -- reading -------------------------------------------------------------
    @property
    def txid(self) -> int | None:
        """The state the copy holds and readers may use now (None while building or checking)."""
        return self._txid

    @property
    def fd(self) -> int | None:
        """The open copy (the owner writes small updates through it)."""
        return self._fd

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
        if self.owned:
            gen = self._gen
            return None if gen & 1 else gen
        try:
            st = os.stat(self.meta_path)
        except OSError:
            return None
        identity = _identity(st)
        return identity if identity == self._loaded else None

    # -- what the copy holds ---------------------------------------------------
    def serve(self, meta: Meta, fd: int | None = None) -> None:
        """Let readers take `meta.txid` from the file (reopened as `fd` first, if given)."""
        if fd is not None:
            self.set_fd(fd)
        self.meta, self._page_size = meta, meta.page_size
        self._txid = meta.txid

    def withdraw(self) -> None:
        """Readers stop taking any state from the file (it is about to be replaced or rebuilt)."""
        self._txid = None

    @contextmanager
    def changing(self) -> Iterator[None]:
        """The owner changes the file (in place, or by reopening it): no read started before
        or during the change counts, and none is served until `serve` names the new state.
        Readers wait for nothing; theirs are served remotely meanwhile."""
        self._gen += 1
        try:
            self._txid = None
            yield
        finally:
            self._gen += 1

    def set_fd(self, fd: int) -> None:
        """Point the copy's descriptor at a new open file without ever freeing its number."""
        if self._fd is None:
            self._fd = fd
        else:
            os.dup2(fd, self._fd)
            os.close(fd)

    def take_ownership(self) -> None:
        """This process now writes the file: versions come from the counter, not the metadata."""
        self._txid, self._loaded = None, None
        self.owned = True

    def close(self) -> None:
        self._txid = None
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None

    # -- follower --------------------------------------------------------------
    def follow(self, replica_url: str) -> str | None:
        """Use the copy another process keeps whenever its metadata says it is ready;
        else say what we wait for (None: serving, or nothing changed)."""
        try:
            st = os.stat(self.meta_path)
        except FileNotFoundError:
            self._txid = None
            return f"waiting for another process to build {self.path}"
        identity = _identity(st)
        if identity == self._loaded:
            return None
        self._txid = None
        meta = Meta.load(self.meta_path)
        if meta is None or meta.replica != replica_url or meta.pending is not None:
            return f"waiting for another process to update {self.path}"
        fd = os.open(self.path, os.O_RDONLY)
        st_db = os.fstat(fd)
        if st_db.st_ino != meta.inode or st_db.st_size != meta.db_size:
            os.close(fd)
            return f"waiting for another process to finish {self.path}"
        self.set_fd(fd)
        self._loaded = identity
        self.serve(meta)
        return None
