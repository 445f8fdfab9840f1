"""A replica in a local directory: `<root>/ltx/<level>/<min>-<max>.ltx`."""

from __future__ import annotations

import os
import time
from urllib.parse import quote

from ..errors import ObjectNotFound, ReplicaError, StorageError
from .base import LEVELS, Counters, LtxObject, parse_ltx_name
from .tree import LTX_LAYOUT, Listed


class FileStorage:
    """Reads LTX files with pread; never writes, never creates directories."""

    layout = LTX_LAYOUT

    def __init__(self, root: str, counters: Counters | None = None) -> None:
        self.root = root
        self.url = "file://" + quote(root)
        self.counters = counters if counters is not None else Counters()

    def __repr__(self) -> str:
        return f"FileStorage({self.url!r})"

    def _path(self, obj: LtxObject) -> str:
        return os.path.join(self.root, "ltx", str(obj.level), obj.name)

    def _missing(self) -> ReplicaError:
        what = "is not a directory" if os.path.exists(self.root) else "does not exist"
        return ReplicaError(f"no replica at {self.root}: the path {what}")

    def list_files(self, levels: tuple[int, ...] = LEVELS) -> list[LtxObject]:
        if not os.path.isdir(self.root):
            raise self._missing()
        found: list[LtxObject] = []
        for level in levels:
            start = time.perf_counter()
            try:
                with os.scandir(os.path.join(self.root, "ltx", str(level))) as entries:
                    for entry in entries:
                        txids = parse_ltx_name(entry.name)
                        if txids is None or not entry.is_file():
                            continue
                        try:
                            stat = entry.stat()
                        except FileNotFoundError:  # removed by compaction meanwhile
                            continue
                        found.append(LtxObject(level, txids[0], txids[1], stat.st_size, str(stat.st_ino)))
            except FileNotFoundError:
                continue  # levels are created lazily by Litestream
            except OSError as exc:
                raise StorageError(f"cannot list {self.root}/ltx/{level}: {exc.strerror}") from exc
            finally:
                self.counters.add(lists=1, network_seconds=time.perf_counter() - start)
        return sorted(found)

    def walk(self) -> list[Listed]:
        """Every file below the root (tagged by inode, as `list_files` does): one directory walk."""
        if not os.path.isdir(self.root):
            raise self._missing()
        start = time.perf_counter()
        pending, found = [""], []
        try:
            while pending:
                relative = pending.pop()
                try:
                    with os.scandir(os.path.join(self.root, relative)) as entries:
                        listed = list(entries)
                except FileNotFoundError:
                    continue  # removed meanwhile (retention)
                except OSError as exc:
                    raise StorageError(f"cannot list {self.root}/{relative}: {exc.strerror}") from exc
                for entry in listed:
                    path = f"{relative}/{entry.name}" if relative else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(path)
                        continue
                    try:
                        stat = entry.stat()
                        found.append(Listed(path, stat.st_size, str(stat.st_ino)))
                    except FileNotFoundError:
                        continue
            return found
        finally:
            self.counters.add(lists=1, network_seconds=time.perf_counter() - start)

    def child(self, relative: str) -> FileStorage:
        return FileStorage(os.path.join(self.root, relative), self.counters)

    def read_range(self, obj: LtxObject, offset: int, length: int) -> bytes:
        path = self._path(obj)
        start = time.perf_counter()
        data = b""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"{path} not found (removed by compaction?)") from exc
        except OSError as exc:
            raise StorageError(f"cannot open {path}: {exc.strerror}") from exc
        try:
            chunks = []
            got = 0
            while got < length:
                chunk = os.pread(fd, length - got, offset + got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            data = b"".join(chunks)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
            self.counters.add(gets=1, bytes_fetched=len(data),
                              network_seconds=time.perf_counter() - start)
        if len(data) != length:
            raise StorageError(
                f"{path} is truncated: wanted {length} bytes at offset {offset}, got {len(data)}")
        return data

    def read_all(self, obj: LtxObject) -> bytes:
        return self.read_range(obj, 0, obj.size)

    def close(self) -> None:
        """Nothing to release: files are opened per read."""
