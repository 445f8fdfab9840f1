"""File metadata: loaded once per file version, checked against the file name on every path."""

from __future__ import annotations

from litestream_vfs.diskcache import DiskCache
from litestream_vfs.executors import Executors
from litestream_vfs.filemeta import WHOLE_FILE_LIMIT
from litestream_vfs.pagecache import PageCache
from litestream_vfs.replica import Replica
from litestream_vfs.storage.file import FileStorage


def fresh_replica(url: str, disk: DiskCache, pools: Executors) -> Replica:
    replica = Replica(FileStorage(url), PageCache(1 << 20), pools)
    replica.attach_disk(disk)
    return replica


def test_an_index_from_the_disk_cache_is_checked_against_the_file_name(file_replica, tmp_path):
    """A persistent cache row that describes another file (a damaged or foreign cache) is never
    used: the file's own index is read from the store instead, and the file is not blamed."""
    pools = Executors(io=2, tasks=2, prefetch=1)
    disk = DiskCache(str(tmp_path / "cache"))
    try:
        first = fresh_replica(file_replica.url, disk, pools)
        small = sorted((o for o in first.files if o.size <= WHOLE_FILE_LIMIT), key=lambda o: o.max_txid)
        source, victim = small[0], small[-1]
        first.metas([source])  # its header and index are now on disk
        disk.put_meta(first.meta._disk_key(victim), *disk.get_meta(first.meta._disk_key(source)))
        again = fresh_replica(file_replica.url, disk, pools)
        meta, = again.metas([victim])
        assert (meta.header.min_txid, meta.header.max_txid) == (victim.min_txid, victim.max_txid)
        assert again.counters.gets == 1 and again.damage.problem(victim) is None
    finally:
        disk.close()
        pools.shutdown(5)


def test_metadata_is_loaded_once_per_file_and_dropped_with_it(file_replica):
    pools = Executors(io=2, tasks=2, prefetch=1)
    try:
        replica = Replica(FileStorage(file_replica.url), PageCache(1 << 20), pools)
        files = sorted(replica.files, key=lambda o: (o.level, o.max_txid))[:5]
        metas = replica.metas(files)
        gets = replica.counters.gets
        assert [m.obj for m in metas] == files and replica.metas(files) == metas
        assert replica.counters.gets == gets  # no request the second time
        replica.meta.retain(frozenset(files[1:]))
        assert replica.meta.sizes[0] == len(files) - 1
    finally:
        pools.shutdown(5)
