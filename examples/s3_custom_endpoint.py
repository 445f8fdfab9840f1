"""Read a replica on an S3-compatible store (MinIO, SeaweedFS, R2, ...) at a custom endpoint.

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\
    python examples/s3_custom_endpoint.py --endpoint http://127.0.0.1:9000 --bucket backups [--upload-demo]

--endpoint/--bucket/--path/--region default to $S3_ENDPOINT, $S3_BUCKET,
$S3_PATH (demo/chinook.db) and $AWS_REGION (us-east-1). --upload-demo first
copies the locally built demo replica there, as if Litestream replicated to it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import quote

import apsw
import boto3

import litestream_vfs
from _demo import demo_replica, run


def upload_demo(endpoint: str, bucket: str, path: str, region: str) -> None:
    """Copy the demo replica's LTX files to s3://bucket/path, in the layout Litestream uses on S3.

    Litestream 0.5 writes `<dir>/ltx/<level>/<file>.ltx` to a directory but
    `<path>/<level as 4 digits>/<file>.ltx` to S3.
    """
    client = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    root = Path(demo_replica().replica_url) / "ltx"
    for file in sorted(root.glob("*/*.ltx")):
        client.upload_file(str(file), bucket, f"{path}/{int(file.parent.name):04d}/{file.name}")


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=env("S3_ENDPOINT"), required=not env("S3_ENDPOINT"))
    parser.add_argument("--bucket", default=env("S3_BUCKET"), required=not env("S3_BUCKET"))
    parser.add_argument("--path", default=env("S3_PATH", "demo/chinook.db"))
    parser.add_argument("--region", default=env("AWS_REGION", "us-east-1"))
    parser.add_argument("--upload-demo", action="store_true")
    args = parser.parse_args()
    if args.upload_demo:
        upload_demo(args.endpoint, args.bucket, args.path, args.region)

    # Litestream's own URL form: endpoint, region and path-style addressing as query parameters.
    url = (f"s3://{args.bucket}/{args.path}?endpoint={args.endpoint}"
           f"&region={args.region}&forcePathStyle=true")
    db = apsw.Connection(f"file:chinook.db?vfs=litestream&replica={quote(url, safe='')}",
                         flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    (txid,), = db.execute("PRAGMA litestream_txid")
    (artists,), = db.execute("SELECT count(*) FROM Artist")
    print(f"{url} at TXID {txid}: {artists} artists")
    stats = litestream_vfs.stats()
    print(f"requests: {stats['lists']:.0f} LIST, {stats['gets']:.0f} GET, {stats['bytes_fetched']:.0f} bytes")


if __name__ == "__main__":
    run(main)
