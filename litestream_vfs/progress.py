"""A one-line progress bar on stderr, shown only when stderr is a terminal.

Pipes, files and CI logs get nothing: a bar redrawn with carriage returns is
noise anywhere but a terminal.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

BAR_CELLS = 30
REDRAW_SECONDS = 0.1


class ProgressBar:
    """Call `update(done, total)` (bytes, or counted `unit`s); draws at most 10 times a second and
    clears itself at the end."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "MB") -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < REDRAW_SECONDS and done < total):
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = int(fraction * BAR_CELLS)
        amounts = f"{done / 1e6:.1f}/{total / 1e6:.1f}" if self.unit == "MB" else f"{done}/{total}"
        tail = f" [{'#' * filled}{'.' * (BAR_CELLS - filled)}] {fraction:6.1%} {amounts} {self.unit}"
        room = max(self._columns() - 1 - len(tail), 0)  # never wrap: '\r' only rewinds one line
        label = self.label if len(self.label) <= room else self.label[:max(room - 1, 0)] + "…"
        self.stream.write(f"\r{label}{tail}"[:self._columns()])
        self.stream.flush()

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError):
            return 80

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled and self._last:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
