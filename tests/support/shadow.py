"""Copies of every LTX file a live replica ever held, so `litestream restore` can rebuild
any state that was ever readable, even after retention deleted its level-0 files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .replicas import ReplicaLocation


class Shadow:
    """Every LTX file that ever appeared in `location`, kept in the directory `target`
    (hard links for a directory replica, downloads for S3): a directory replica to restore from.

    A thread rescans every `interval` seconds: it must be shorter than the time
    Litestream keeps a file (its L0 retention), or a state can be lost.
    """

    def __init__(self, location: ReplicaLocation, target: Path, interval: float = 0.05) -> None:
        self.location, self.target, self.interval = location, target, interval
        self.seen: set[Path] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._client = None if location.server is None else location.server.boto3_client()

    def sync(self) -> None:
        for key in self.location.list_objects():
            *_, level, name = ("", "") + tuple(key.split("/"))
            if not name.endswith(".ltx") or not level.isdigit():
                continue
            relative = Path("ltx", str(int(level)), name)  # a directory replica's layout (S3's is 0000/…)
            if relative in self.seen:
                continue
            (self.target / relative).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._copy(key, self.target / relative)
            except FileNotFoundError:
                continue  # deleted between listing and copying: it was seen by an earlier sync
            except FileExistsError:
                pass  # linked by a concurrent sync (a caller's, beside the thread's)
            self.seen.add(relative)

    def _copy(self, key: str, to: Path) -> None:
        if self._client is None:
            os.link(Path(self.location.root) / key, to)
            return
        partial = to.with_name(to.name + ".part")
        try:
            self._client.download_file(self.location.server.bucket, key, str(partial))
        except self._client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(key) from exc
            raise
        partial.rename(to)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync()

    def __enter__(self) -> Shadow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sync()
