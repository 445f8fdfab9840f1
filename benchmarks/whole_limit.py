"""Where fetching an LTX file whole stops being cheap: the `replica.WHOLE_FILE_LIMIT` measurement.

For LTX files of several sizes on SeaweedFS behind the latency proxy, compare
what a cold read of one page costs (issue 15, `verify=auto`):

- whole: one GET of the file, decoded and its CRC-64 file checksum verified
  (what `auto` does before serving a page of a file up to the limit);
- ranges: the first 64 KiB and the index suffix in parallel, then one page's
  frame (what a file above the limit costs before its first page is served;
  under `auto` its background verification then fetches the whole file again,
  off the query's critical path).

Usage: python benchmarks/whole_limit.py [--latency-ms 20] [--repeat 5]
Prints a Markdown table (median times); the files are synthetic (half-
compressible pages, as the events table's payloads), written by our encoder
in Litestream 0.5.17's layout.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from litestream_vfs import ltx  # noqa: E402
from litestream_vfs.filemeta import HEAD_PREFETCH, guess_tail_length  # noqa: E402
from litestream_vfs.storage import open_storage  # noqa: E402
from litestream_vfs.storage.base import LtxObject  # noqa: E402
from support.proxy import Proxy  # noqa: E402
from support.seaweed import running_seaweedfs  # noqa: E402

PAGE_SIZE = 4096
SIZES_KIB = (128, 256, 512, 1024, 2048, 4096, 8192)


def synthetic_ltx(target_bytes: int, txid: int) -> bytes:
    """An LTX file of about `target_bytes`: pages half random, half repeated text."""
    rng = random.Random(txid)
    pages = {}
    pgno = 1
    while len(pages) * PAGE_SIZE // 2 < target_bytes:
        pages[pgno] = rng.randbytes(PAGE_SIZE // 2) + (f"row {pgno} " * PAGE_SIZE).encode()[:PAGE_SIZE // 2]
        pgno += 1
    header = ltx.Header(flags=2, page_size=PAGE_SIZE, commit=pgno - 1, min_txid=txid, max_txid=txid,
                        timestamp_ms=0)
    return ltx.encode_file(header, pages)


def measure(storage, obj: LtxObject, pool: ThreadPoolExecutor) -> tuple[float, float, int, int]:
    """(seconds whole + verify, seconds head/tail then one frame, bytes whole, bytes ranged)."""
    began = time.perf_counter()
    ltx.decode_file(storage.read_all(obj), str(obj))
    whole = time.perf_counter() - began

    began = time.perf_counter()
    head = pool.submit(storage.read_range, obj, 0, min(HEAD_PREFETCH, obj.size))
    length = guess_tail_length(obj.size)
    tail = ltx.parse_tail(storage.read_range(obj, obj.size - length, length), obj.size, str(obj))
    head.result()
    entry = list(tail.index.values())[len(tail.index) // 2]
    storage.read_range(obj, entry.offset, entry.size)
    ranged = time.perf_counter() - began
    return whole, ranged, obj.size, min(HEAD_PREFETCH, obj.size) + length + entry.size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="whole-limit-") as tmp, \
            running_seaweedfs(Path(tmp) / "seaweedfs") as server, \
            Proxy(server.endpoint_url, latency=args.latency_ms / 1000) as proxy, \
            ThreadPoolExecutor(4) as pool:
        os.environ.update(server.credentials_env())
        client = server.boto3_client()
        objs = []
        for i, kib in enumerate(SIZES_KIB, start=1):
            data = synthetic_ltx(kib * 1024, i)
            client.put_object(Bucket=server.bucket, Key=f"limit/db/0000/{i:016x}-{i:016x}.ltx", Body=data)
            objs.append(LtxObject(0, i, i, len(data)))
        storage = open_storage(server.s3_url("limit/db").replace(server.endpoint_url, proxy.url))
        print(f"| file | whole GET + verify | header+index, then one page | whole / ranged time "
              f"| bytes whole / ranged |  (median of {args.repeat}, {args.latency_ms:g} ms per request)")
        print("|---|---|---|---|---|")
        for obj in objs:
            runs = [measure(storage, obj, pool) for _ in range(args.repeat)]
            whole = statistics.median(r[0] for r in runs)
            ranged = statistics.median(r[1] for r in runs)
            print(f"| {obj.size / 1024:,.0f} KiB | {whole * 1000:.0f} ms, 1 GET | {ranged * 1000:.0f} ms, 3 GETs "
                  f"(2 round trips) | {whole / ranged:.2f}× | {runs[0][2] / runs[0][3]:.1f}× |")


if __name__ == "__main__":
    main()
