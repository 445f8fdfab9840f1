"""The progress bar: drawn only on a terminal, in MB or in counted units, cleared at the end."""

from __future__ import annotations

import io

from litestream_vfs.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bytes_are_shown_in_mb_and_counted_units_as_counts():
    screen = Terminal()
    with ProgressBar("restoring", screen) as bar:
        bar.update(1_500_000, 3_000_000)
    assert "50.0% 1.5/3.0 MB" in screen.getvalue()
    assert screen.getvalue().endswith("\r\x1b[K")
    screen = Terminal()
    with ProgressBar("fleet", screen, unit="databases") as bar:
        bar.update(7, 10)
    assert "70.0% 7/10 databases" in screen.getvalue()


def test_nothing_is_drawn_off_a_terminal():
    pipe = io.StringIO()
    with ProgressBar("fleet", pipe, unit="databases") as bar:
        bar.update(1, 2)
        bar.update(2, 2)
    assert pipe.getvalue() == ""
