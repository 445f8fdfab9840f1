"""The listing owner: published snapshots never change; a fresh one is published only when needed."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from litestream_vfs.damage import Damage
from litestream_vfs.errors import ReplicaError
from litestream_vfs.listing import Lister, Listing
from litestream_vfs.storage.base import Counters
from litestream_vfs.storage.file import FileStorage


@pytest.fixture
def copy(file_replica, tmp_path):
    root = tmp_path / "replica"
    shutil.copytree(file_replica.url, root, ignore=shutil.ignore_patterns("*.tmp"))
    return root


def lister_of(root) -> tuple[Lister, list[tuple[Listing | None, Listing]]]:
    published: list[tuple[Listing | None, Listing]] = []
    return Lister(FileStorage(str(root)), Counters(), Damage(), lambda a, b: published.append((a, b))), published


def test_a_published_listing_is_never_changed_by_later_listings(copy):
    lister, published = lister_of(copy)
    first = lister.get()
    files_before = set(first.files)
    newest = max(first.files, key=lambda o: o.max_txid)
    os.unlink(copy / "ltx" / str(newest.level) / newest.name)
    second = lister.refresh()
    assert second is not first and second.generation == first.generation + 1
    assert set(first.files) == files_before and newest in first.files and newest not in second.files
    assert [p for p, _ in published] == [None, first]


def test_fresh_lists_again_only_when_no_list_confirmed_it_lately(copy):
    lister, _ = lister_of(copy)
    counters = Counters()
    first = lister.fresh(60, (counters,))
    assert lister.fresh(60, (counters,)) is first and counters.lists > 0
    before = counters.lists
    time.sleep(0.05)
    assert lister.fresh(0.01, (counters,)) is not first and counters.lists > before


def test_a_file_listed_as_another_version_means_the_replica_was_recreated(copy):
    """A local file's version is its inode: Litestream sets a new file's mtime after renaming
    it into place, so the mtime is no version (the live soak saw false re-creations)."""
    lister, _ = lister_of(copy)
    first = lister.get()
    victim = min(first.files, key=lambda o: (o.level, o.max_txid))
    path = copy / "ltx" / str(victim.level) / victim.name
    shutil.copyfile(path, path.with_suffix(".new"))
    os.replace(path.with_suffix(".new"), path)  # written anew: same name and size, another file
    second = lister.refresh()
    assert second.recreated_since(first) and not first.recreated_since(first)


def test_an_empty_replica_is_one_clear_error(tmp_path):
    (tmp_path / "ltx" / "0").mkdir(parents=True)
    lister, _ = lister_of(tmp_path)
    with pytest.raises(ReplicaError, match="the replica is empty"):
        lister.get()
