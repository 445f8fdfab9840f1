"""Time strings people type, and TXIDs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from litestream_vfs.errors import TimeParseError
from litestream_vfs.timeparse import format_time, is_latest, parse_time, parse_txid

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2026-01-02T03:04:05.123Z", datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=timezone.utc)),
    ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2026-01-02 03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("5 minutes ago", NOW - timedelta(minutes=5)),
    ("2 hours ago", NOW - timedelta(hours=2)),
    ("1 day ago", NOW - timedelta(days=1)),
])
def test_parse_time(text, expected):
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["blorp", "", "   ", "the day after never"])
def test_unparseable_time_names_the_text(text):
    with pytest.raises(TimeParseError) as info:
        parse_time(text, now=NOW)
    assert text.strip() in str(info.value) or "empty" in str(info.value)


def test_format_time_round_trips_milliseconds():
    value = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert format_time(value) == "2026-01-02T03:04:05.678Z"
    assert parse_time(format_time(value)) == value


@pytest.mark.parametrize("word", ["latest", "LATEST", "now", " now "])
def test_latest_words(word):
    assert is_latest(word)


def test_parse_txid():
    assert parse_txid("000000000000002a") == 42
    assert parse_txid("0x2A") == 42
    for bad in ("zz", "0", "-1", "1" * 17):
        with pytest.raises(TimeParseError):
            parse_txid(bad)
