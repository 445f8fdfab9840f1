"""Turn what people type ("5 minutes ago", RFC 3339, "latest") into UTC instants.

RFC 3339 and the common relative forms ("5 minutes ago", "1h30m ago", "last
week", "yesterday 18:00", "today 09:30", "now") are parsed here, in
microseconds; only other free text loads dateparser (about 0.1-0.3 s to
import), and text that cannot be a time (no digit, no date word) is refused
without it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .errors import TimeParseError

LATEST_WORDS = frozenset({"latest", "now", ""})
_UNIT_SECONDS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
                 "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
                 "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
                 "d": 86400, "day": 86400, "days": 86400,
                 "w": 604800, "wk": 604800, "wks": 604800, "week": 604800, "weeks": 604800}
_UNIT_MONTHS = {"month": 1, "months": 1, "mo": 1, "y": 12, "yr": 12, "yrs": 12, "year": 12, "years": 12}
_UNIT = "|".join(sorted({*_UNIT_SECONDS, *_UNIT_MONTHS}, key=len, reverse=True))
_AMOUNT = rf"(\d+(?:\.\d+)?\s*|(?:an?|one)\s+)({_UNIT})(?![a-z])"
#: Patterns as text: `re` compiles (and caches) them at the first relative time, not at import.
_AGO = rf"(?:{_AMOUNT}[\s,]*(?:and\s+)?)+ago"
_LAST = rf"last\s+({_UNIT})"
_DAY = r"(today|yesterday)(?:\s+(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm)?)?"
#: Words dateparser's English can read; text with none of them and no digit is not a time.
_DATE_WORDS = frozenset(
    "ago last next this now today yesterday tomorrow noon midnight morning evening night "
    "am pm utc gmt z week weeks day days hour hours minute minutes second seconds month months "
    "year years fortnight monday tuesday wednesday thursday friday saturday sunday mon tue wed "
    "thu fri sat sun january february march april may june july august september october "
    "november december jan feb mar apr jun jul aug sep sept oct nov dec".split())
_HINT = "try RFC 3339 like 2026-01-02T15:04:05Z, or '5 minutes ago', 'yesterday 18:00'"


def is_latest(text: str) -> bool:
    """True for the words that mean 'follow the newest state'."""
    return text.strip().lower() in LATEST_WORDS


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime for `text`; TimeParseError naming the text otherwise.

    RFC 3339 / ISO 8601 is parsed exactly (naive values are taken as UTC);
    relative forms count back from `now` (default: the current time).
    """
    stripped = text.strip()
    if not stripped:
        raise TimeParseError("empty time string")
    iso = stripped[:-1] + "+00:00" if stripped[-1:] in "zZ" else stripped
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        base = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        value = _parse_relative(" ".join(stripped.lower().split()), base)
        if value is None:
            value = _parse_natural(stripped, base)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _parse_relative(text: str, now: datetime) -> datetime | None:
    """The common forms, without dateparser; None for anything else."""
    import re

    if text == "now":
        return now
    if re.fullmatch(_AGO, text):
        value = now
        for amount, unit in re.findall(_AMOUNT, text):
            value = _back(value, amount, unit)
            if value is None:
                return None
        return value
    last = re.fullmatch(_LAST, text)
    if last:
        return _back(now, "1", last.group(1))
    day = re.fullmatch(_DAY, text)
    if day:
        when = now if day.group(1) == "today" else now - timedelta(days=1)
        try:
            return _on_day(when, *day.groups()[1:])
        except ValueError as exc:
            raise TimeParseError(f"cannot understand the time {text!r}: {exc}") from None
    return None


def _back(value: datetime, amount: str, unit: str) -> datetime | None:
    amount = amount.strip()
    count = 1.0 if amount in ("a", "an", "one") else float(amount)
    if unit in _UNIT_SECONDS:
        return value - timedelta(seconds=count * _UNIT_SECONDS[unit])
    if not count.is_integer():
        return None  # "1.5 months": leave it to dateparser
    months = value.year * 12 + value.month - 1 - int(count) * _UNIT_MONTHS[unit]
    year, month = divmod(months, 12)
    days_in_month = (datetime(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return value.replace(year=year, month=month + 1, day=min(value.day, days_in_month))


def _on_day(day: datetime, hour: str | None, minute: str | None, second: str | None,
            meridiem: str | None) -> datetime:
    """`day` itself ("yesterday" is this time yesterday, as dateparser has it), or at a clock time."""
    if hour is None:
        return day
    clock = int(hour)
    if meridiem:
        if not 1 <= clock <= 12:
            raise ValueError(f"{hour} {meridiem} is not an hour")
        clock = clock % 12 + (12 if meridiem == "pm" else 0)
    return day.replace(hour=clock, minute=int(minute or 0), second=int(second or 0), microsecond=0)


def _parse_natural(text: str, now: datetime) -> datetime:
    """Other free text: dateparser (English first), loaded only if the text could be a time at all."""
    import re

    words = re.findall(r"[a-z]+", text.lower())
    if not any(c.isdigit() for c in text) and text.isascii() and not _DATE_WORDS.intersection(words):
        raise TimeParseError(f"cannot understand the time {text!r}: it is neither RFC 3339 "
                             f"nor a relative time ({_HINT})")
    import dateparser  # slow to import: only when a human phrase needs it

    settings = {
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "TIMEZONE": "UTC",
        "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": "past",
    }
    value = dateparser.parse(text, languages=["en"], settings=settings)
    if value is None and not (text.isascii() and not any(c.isdigit() for c in text)):
        value = dateparser.parse(text, settings=settings)  # every language: seconds to load
    if value is None:
        raise TimeParseError(f"cannot understand the time {text!r} ({_HINT})")
    return value


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, the precision Litestream stores."""
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_txid(txid: int) -> str:
    return f"{txid:016x}"


def parse_txid(text: str) -> int:
    """A TXID as 16-hex (or shorter hex, optionally 0x-prefixed); TimeParseError otherwise."""
    stripped = text.strip().lower().removeprefix("0x")
    try:
        value = int(stripped, 16)
    except ValueError:
        raise TimeParseError(f"not a TXID: {text!r} (expected hex like 000000000000002a)") from None
    if not 0 <= value < 1 << 64:  # 0 parses, so the replica names the states it has
        raise TimeParseError(f"TXID out of range: {text!r}")
    return value
