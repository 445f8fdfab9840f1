"""Where each page of a state lives: file metadata, frame tables and page maps.

Every object here is immutable once built and refers to the `FileMeta` it came
from, not to a shared table: whoever holds a state's page map holds the
metadata of every file it reads from, so nothing it uses can vanish under it
(compaction or a new listing only stop *new* states from using a file).
A `FileMeta` carries the file's identity (URL, level, name, size, trailer
checksum), the key of every cached page and frame of it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator, Mapping, NamedTuple, Sequence

from . import ltx
from .storage.base import LtxObject


def file_identity(url: str, obj: LtxObject, checksum: int) -> str:
    """Cache key of one LTX file: a re-created replica's same-named file never shares it."""
    return f"{url}|{obj}|{obj.size}|{checksum:016x}"


@dataclass(frozen=True, eq=False)
class FileMeta:
    """One LTX file's header and page index; compared by identity (it is built once per file)."""

    obj: LtxObject
    header: ltx.Header
    tail: ltx.Tail
    #: `file_identity(...)`: the prefix of this file's cache keys, in memory and on disk.
    key: str

    @property
    def checksum(self) -> int:
        return self.tail.trailer.file_checksum

    @cached_property
    def table(self) -> "FrameTable":
        """Frames in file order (built on first use, released with the metadata)."""
        return FrameTable(self)


class FrameTable:
    """One file's frames in file order, to decode every frame inside a fetched range."""

    def __init__(self, meta: FileMeta) -> None:
        index = meta.tail.index
        self.page_size = meta.header.page_size
        self.pgnos, self.offsets, self.sizes = index.pgnos, index.offsets, index.sizes  # shared, not copied
        self.frames_end = meta.tail.index_offset - 6

    def span(self, start: int, end: int) -> range:
        """Indexes of the frames lying wholly inside [start, end)."""
        first = bisect_left(self.offsets, start)
        last = bisect_left(self.offsets, end)
        while last > first and self.offsets[last - 1] + self.sizes[last - 1] > end:
            last -= 1
        return range(first, last)

    def align(self, offset: int) -> int:
        """The start of the frame holding `offset`, so ranges split between frames, never inside one."""
        if not self.offsets or offset >= self.frames_end:
            return self.frames_end
        return self.offsets[max(bisect_right(self.offsets, offset) - 1, 0)]

    def pgno_at(self, offset: int) -> int:
        return self.pgnos[bisect_left(self.offsets, offset)]


class PageLocation(NamedTuple):
    """Where one page of a state lives: a frame of an LTX file (one per page: kept light)."""

    meta: FileMeta
    offset: int
    size: int

    @property
    def obj(self) -> LtxObject:
        return self.meta.obj

    @property
    def key(self) -> tuple[str, int]:
        """Its key in the page cache."""
        return (self.meta.key, self.offset)


def locations(meta: FileMeta) -> Iterator[tuple[int, PageLocation]]:
    return ((pgno, PageLocation(meta, e.offset, e.size)) for pgno, e in meta.tail.index.items())


#: A file with at least this many pages is a layer of its own, located through its index on
#: lookup instead of copied into a dict (about 120 bytes a page; a snapshot has them all).
OWN_LAYER_PAGES = 4096
#: Above this many layers a map merges its upper ones, so a lookup stays a few probes.
MAX_LAYERS = 12


class FileLayer:
    """Every page of one large file, found in its page index (no per-page objects)."""

    __slots__ = ("meta",)

    def __init__(self, meta: FileMeta) -> None:
        self.meta = meta

    def get(self, pgno: int) -> PageLocation | None:
        index = self.meta.tail.index
        i = index.position(pgno)
        return PageLocation(self.meta, index.offsets[i], index.sizes[i]) if i >= 0 else None

    def __iter__(self) -> Iterator[int]:
        return iter(self.meta.tail.index)

    def __len__(self) -> int:
        return len(self.meta.tail.index)

    def items(self) -> Iterator[tuple[int, PageLocation]]:
        return locations(self.meta)


class PageMap(Mapping[int, PageLocation]):
    """pgno -> location for one state: layers of pages, newest last, shared between states.

    A state that extends a known one by a few files adds one small layer: its
    cost is the pages those files changed, not the database size. Layers are
    merged like a binary counter (a layer is merged into the one below it once
    it is at least half its size), so each entry is copied O(log n) times over
    a long follow and a lookup checks O(log n) layers at most (few in practice).
    A large file (a snapshot, a big compaction) is a `FileLayer` that is never
    copied: the map of a 1 GB database costs its index, not a dict of 260 k entries.
    """

    def __init__(self, layers: tuple[dict[int, PageLocation] | FileLayer, ...], commit: int, top: int) -> None:
        self._layers = layers
        self.commit = commit
        #: The highest page number in any layer (above `commit` after the database shrank).
        self._top = top

    @classmethod
    def build(cls, metas: Sequence[FileMeta], commit: int, previous: "PageMap | None" = None) -> "PageMap":
        """The map after applying `metas` (oldest first) on top of `previous`; newest file wins."""
        layers: list[dict[int, PageLocation] | FileLayer] = []
        top = 0
        if previous is not None and previous._top > previous.commit:  # it shrank: drop what it cut off
            layers, top = [dict(previous.items())], previous.commit
        elif previous is not None:
            layers, top = list(previous._layers), previous._top
        new: dict[int, PageLocation] = {}
        for meta in metas:
            top = max(top, meta.tail.index.pgnos[-1] if meta.tail.index else 0)
            if len(meta.tail.index) >= OWN_LAYER_PAGES:
                _push(layers, new)
                layers.append(FileLayer(meta))
                new = {}
            else:
                new.update(locations(meta))
        _push(layers, new)
        if len(layers) > MAX_LAYERS:  # many large files in a row: one dict for the upper half
            merged: dict[int, PageLocation] = {}
            for layer in layers[MAX_LAYERS // 2:]:
                merged.update(layer.items())
            layers[MAX_LAYERS // 2:] = [merged]
        return cls(tuple(layers), commit, top)

    def get(self, pgno: int, default: PageLocation | None = None) -> PageLocation | None:  # type: ignore[override]
        if pgno > self.commit:
            return default
        for layer in reversed(self._layers):
            loc = layer.get(pgno)
            if loc is not None:
                return loc
        return default

    def __getitem__(self, pgno: int) -> PageLocation:
        loc = self.get(pgno)
        if loc is None:
            raise KeyError(pgno)
        return loc

    def __contains__(self, pgno: object) -> bool:
        return isinstance(pgno, int) and self.get(pgno) is not None

    def __iter__(self) -> Iterator[int]:
        seen: set[int] = set()
        for layer in reversed(self._layers):
            for pgno in layer:
                if pgno <= self.commit and pgno not in seen:
                    seen.add(pgno)
                    yield pgno

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def depth(self) -> int:
        return len(self._layers)


def _push(layers: list[dict[int, PageLocation] | FileLayer], new: dict[int, PageLocation]) -> None:
    """Add a layer of small files' pages, merging dict layers below it like a binary counter."""
    if not new:
        return
    while layers and isinstance(layers[-1], dict) and 2 * len(new) >= len(layers[-1]):
        new = {**layers.pop(), **new}
    layers.append(new)


def merge_page_maps(metas: Sequence[FileMeta], commit: int) -> PageMap:
    """The pages written by `metas` (oldest first, newest wins) up to `commit`."""
    return PageMap.build(metas, commit)
