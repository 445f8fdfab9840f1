"""Sample LTX contents shared by the LTX codec tests: headers, pages and hypothesis strategies."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from litestream_vfs.ltx import FLAG_NO_CHECKSUM, Header, lock_page

PAGE_SIZES = [2**n for n in range(9, 17)]
FLAVOURS = ["block", "frame"]


def page_bytes(seed: int, page_size: int) -> bytes:
    """A page that looks like SQLite's: some incompressible bytes, then zeros (free space)."""
    rng = random.Random(seed)
    used = rng.randrange(1, page_size)
    return rng.randbytes(used) + bytes(page_size - used)


def make_header(page_size: int, pages: dict[int, bytes]) -> Header:
    """A header as Litestream 0.5 writes one (no-checksum flag), committing up to the highest page."""
    return Header(
        flags=FLAG_NO_CHECKSUM,
        page_size=page_size,
        commit=max(pages, default=1),
        min_txid=5,
        max_txid=9,
        timestamp_ms=1_700_000_000_123,
    )


@st.composite
def contents(
    draw: st.DrawFn, page_sizes: list[int] = PAGE_SIZES, max_pages: int = 6
) -> tuple[Header, dict[int, bytes]]:
    """A header and random pages (numbers often right next to the lock page) with SQLite-like contents."""
    page_size = draw(st.sampled_from(page_sizes))
    lock = lock_page(page_size)
    pgno = st.one_of(
        st.integers(1, 40),
        st.sampled_from([lock - 2, lock - 1, lock + 1, lock + 2]),
        st.integers(1, lock + 1000).filter(lambda n: n != lock),
    )
    numbers = draw(st.sets(pgno, max_size=max_pages))
    pages = {n: page_bytes(draw(st.integers(0, 2**32)), page_size) for n in numbers}
    return make_header(page_size, pages), pages
