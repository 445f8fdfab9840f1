"""Configure the replica in a .env file: LITESTREAM_REPLICA_URL is read when a connection opens.

    pip install 'litestream-apsw[dotenv]'   (in a checkout: pip install -e '.[dotenv]')
    python examples/dotenv_config.py [PATH_TO_.env]

Without an argument a temporary .env naming the demo replica is written first.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import apsw
from dotenv import load_dotenv

import litestream_vfs  # noqa: F401 - importing registers the "litestream" VFS; no replica needed yet
from _demo import demo_replica, run


def main() -> None:
    if len(sys.argv) > 1:
        load(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            env_file = Path(directory) / ".env"
            env_file.write_text(f"LITESTREAM_REPLICA_URL={demo_replica().replica_url}\n")
            load(env_file)


def load(env_file: Path) -> None:
    if not env_file.is_file():
        raise FileNotFoundError(f"{env_file} does not exist (expected a .env file with LITESTREAM_REPLICA_URL=...)")
    load_dotenv(env_file)  # after the import: the VFS reads the variable at open time
    print(f"Loaded {env_file}")
    db = apsw.Connection("file:chinook.db?vfs=litestream", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    (txid,), = db.execute("PRAGMA litestream_txid")
    (albums,), = db.execute("SELECT count(*) FROM Album")
    print(f"chinook.db at TXID {txid}: {albums} albums")


if __name__ == "__main__":
    run(main)
