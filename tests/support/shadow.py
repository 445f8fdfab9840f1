"""Hard links of every LTX file a live replica ever held, so `litestream restore` can
rebuild any state that was ever readable, even after retention deleted its level-0 files."""

from __future__ import annotations

import os
import threading
from pathlib import Path


class Shadow:
    """Hard links of every LTX file that ever appeared under `source`/ltx, kept in `target`.

    A thread rescans every `interval` seconds: it must be shorter than the time
    Litestream keeps a file (its L0 retention), or a state can be lost.
    """

    def __init__(self, source: Path, target: Path, interval: float = 0.05) -> None:
        self.source, self.target, self.interval = source, target, interval
        self.seen: set[Path] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)

    def sync(self) -> None:
        for path in (self.source / "ltx").glob("*/*.ltx"):
            relative = path.relative_to(self.source)
            if relative in self.seen:
                continue
            (self.target / relative).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, self.target / relative)
            except FileNotFoundError:
                continue  # deleted between glob and link: it was seen by an earlier sync
            except FileExistsError:
                pass  # linked by a concurrent sync (a caller's, beside the thread's)
            self.seen.add(relative)

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
