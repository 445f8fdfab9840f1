"""Turn what people type ("5 minutes ago", RFC 3339, "latest") into UTC instants."""

from __future__ import annotations

from datetime import datetime, timezone

from .errors import TimeParseError

LATEST_WORDS = frozenset({"latest", "now", ""})


def is_latest(text: str) -> bool:
    """True for the words that mean 'follow the newest state'."""
    return text.strip().lower() in LATEST_WORDS


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime for `text`; TimeParseError naming the text otherwise.

    RFC 3339 / ISO 8601 is parsed exactly (naive values are taken as UTC);
    anything else goes to dateparser, relative to `now`, as UTC.
    """
    stripped = text.strip()
    if not stripped:
        raise TimeParseError("empty time string")
    iso = stripped[:-1] + "+00:00" if stripped[-1:] in "zZ" else stripped
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        value = _parse_natural(stripped, now)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _parse_natural(text: str, now: datetime | None) -> datetime:
    import dateparser  # slow to import: only when a human phrase needs it

    base = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    settings = {
        "RELATIVE_BASE": base.replace(tzinfo=None),
        "TIMEZONE": "UTC",
        "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": "past",
    }
    value = dateparser.parse(text, settings=settings)
    if value is None:
        raise TimeParseError(f"cannot understand the time {text!r} "
                             "(try RFC 3339 like 2026-01-02T15:04:05Z, or '5 minutes ago')")
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
    if not 0 < value < 1 << 64:
        raise TimeParseError(f"TXID out of range: {text!r}")
    return value
