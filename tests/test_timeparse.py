"""Time strings people type, and TXIDs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
    ("1 second ago", NOW - timedelta(seconds=1)),
    ("90 secs ago", NOW - timedelta(seconds=90)),
    ("an hour ago", NOW - timedelta(hours=1)),
    ("a minute ago", NOW - timedelta(minutes=1)),
    ("1.5 hours ago", NOW - timedelta(hours=1, minutes=30)),
    ("1h30m ago", NOW - timedelta(hours=1, minutes=30)),
    ("1 hour, 30 minutes ago", NOW - timedelta(hours=1, minutes=30)),
    ("2 days and 3 hours ago", NOW - timedelta(days=2, hours=3)),
    ("  5   Minutes  AGO ", NOW - timedelta(minutes=5)),
    ("3 weeks ago", NOW - timedelta(weeks=3)),
    ("last week", NOW - timedelta(weeks=1)),
    ("last hour", NOW - timedelta(hours=1)),
    ("1 month ago", datetime(2026, 10, 23, 12, 0, 0, tzinfo=timezone.utc)),
    ("2 years ago", datetime(2024, 11, 23, 12, 0, 0, tzinfo=timezone.utc)),
    ("last month", datetime(2026, 10, 23, 12, 0, 0, tzinfo=timezone.utc)),
    ("now", NOW),
    ("today", NOW),
    ("yesterday", NOW - timedelta(days=1)),
    ("yesterday 18:00", datetime(2026, 11, 22, 18, 0, 0, tzinfo=timezone.utc)),
    ("yesterday at 6:05 pm", datetime(2026, 11, 22, 18, 5, 0, tzinfo=timezone.utc)),
    ("today 09:30", datetime(2026, 11, 23, 9, 30, 0, tzinfo=timezone.utc)),
    ("today 09:30:15", datetime(2026, 11, 23, 9, 30, 15, tzinfo=timezone.utc)),
    ("Yesterday 12am", datetime(2026, 11, 22, 0, 0, 0, tzinfo=timezone.utc)),
])
def test_parse_time(text, expected):
    assert parse_time(text, now=NOW) == expected


def test_a_month_back_from_the_31st_is_the_end_of_the_shorter_month():
    march_31 = datetime(2026, 3, 31, 8, 0, tzinfo=timezone.utc)
    assert parse_time("1 month ago", now=march_31) == datetime(2026, 2, 28, 8, 0, tzinfo=timezone.utc)
    assert parse_time("13 months ago", now=march_31) == datetime(2025, 2, 28, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["tuesday 3pm", "March 3 2026 10:00", "il y a 5 minutes"])
def test_other_free_text_goes_to_dateparser(text):
    assert parse_time(text, now=NOW) < NOW


@pytest.mark.parametrize("text", ["blorp", "", "   ", "the day after never", "zz", "asdf qwerty",
                                  "ad ago", "yesterday 25:00", "today 13:00 pm"])
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
    assert parse_txid("0") == 0  # never a state: the replica then says which states it has
    for bad in ("zz", "-1", "1" * 17):
        with pytest.raises(TimeParseError):
            parse_txid(bad)


REPO = Path(__file__).resolve().parents[1]
COMMON = ["2026-01-02T03:04:05Z", "5 minutes ago", "2 hours ago", "1 day ago", "yesterday",
          "yesterday 18:00", "today 09:30", "now", "last week", "1h30m ago"]
GARBAGE = ["zz", "asdf qwerty", "blorp"]


def test_common_forms_and_garbage_never_load_dateparser():
    """The speed bound as a count: dateparser (0.1-0.3 s to import, seconds to try every
    language on garbage) is not loaded for the common forms nor to refuse garbage."""
    script = ("import json, sys\n"
              "from litestream_vfs.timeparse import parse_time\n"
              "from litestream_vfs.errors import TimeParseError\n"
              "refused = []\n"
              "for text in json.loads(sys.argv[1]):\n"
              "    parse_time(text)\n"
              "for text in json.loads(sys.argv[2]):\n"
              "    try:\n"
              "        parse_time(text)\n"
              "    except TimeParseError as exc:\n"
              "        refused.append(str(exc))\n"
              "print(json.dumps({'dateparser': 'dateparser' in sys.modules, 'refused': refused}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(COMMON), json.dumps(GARBAGE)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["dateparser"] is False
    assert len(out["refused"]) == len(GARBAGE)
    assert all("neither RFC 3339 nor a relative time" in message for message in out["refused"])
