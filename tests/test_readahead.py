"""Read heads: sequential misses grow a window up to the cap they are given; memory stays bounded."""

from __future__ import annotations

from litestream_vfs.readahead import MIN_WINDOW, ReadAhead


def test_a_sequential_stream_doubles_its_window_up_to_the_cap():
    heads = ReadAhead()
    end = 4096
    assert heads.plan("f", 0, end, 1 << 30) == (end, None)  # first miss: only what was asked
    windows = []
    start = end
    for _ in range(8):
        fetch_end, ahead = heads.plan("f", start, start + 4096, 1 << 30, max_window=256 * 1024)
        assert ahead is not None and ahead[0] == fetch_end
        windows.append(fetch_end - start)
        start = ahead[1]
    assert windows[0] == MIN_WINDOW and max(windows) == 256 * 1024


def test_a_jump_starts_a_new_head_and_fetches_only_what_was_asked():
    heads = ReadAhead()
    heads.plan("f", 0, 4096, 1 << 30)
    heads.plan("f", 4096, 8192, 1 << 30)
    assert heads.plan("f", 10 << 20, (10 << 20) + 4096, 1 << 30) == ((10 << 20) + 4096, None)


def test_heads_are_kept_for_the_most_recent_files_only():
    heads = ReadAhead()
    for n in range(ReadAhead.FILES_KEPT * 3):
        heads.plan(f"file-{n}", 0, 4096, 1 << 20)
    assert heads.files == ReadAhead.FILES_KEPT
