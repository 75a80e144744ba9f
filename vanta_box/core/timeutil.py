"""UTC timestamps: parsing, the canonical text form, durations.

Internally a moment is an ``int`` of microseconds since the Unix epoch (sortable, exact).
Its canonical text is ISO-8601 with ``Z``: ``2026-11-01T00:00:00Z``, with six fractional
digits only when the moment is not a whole second.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta

US = 1_000_000
DAY_US = 86_400 * US

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"(\d+)([wdhms])")
_DURATION_FULL = re.compile(r"(?:\d+[wdhms])+")
_DURATION_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


class TimeError(ValueError):
    pass


def from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def to_datetime(ts: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ts)


def parse_ts(text: object) -> int:
    """Parse an ISO-8601 timestamp. ``Z`` or an offset; no zone means UTC; a bare date
    means midnight UTC."""
    if not isinstance(text, str) or not text.strip():
        raise TimeError(
            f"not a timestamp: {text!r} (expected UTC ISO-8601, e.g. 2026-11-01T00:00:00Z)")
    raw = text.strip()
    candidate = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        if len(candidate) == 10:
            parsed_date = date.fromisoformat(candidate)
            moment = datetime(parsed_date.year, parsed_date.month, parsed_date.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise TimeError(
            f"not a timestamp: {raw!r} (expected UTC ISO-8601, e.g. 2026-11-01T00:00:00Z)"
        ) from None
    return from_datetime(moment)


def fmt_ts(ts: int) -> str:
    moment = to_datetime(ts)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``6h``, ``2d``, ``1w`` or combinations (``1h30m``) -> microseconds."""
    raw = text.strip().replace(" ", "").lower()
    if not _DURATION_FULL.fullmatch(raw):
        raise TimeError(f"not a duration: {text!r} (examples: 90s, 30m, 6h, 2d, 1w, 1h30m)")
    total = sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION.findall(raw))
    if total <= 0:
        raise TimeError(f"duration must be positive: {text!r}")
    return total * US


def day_of(ts: int) -> date:
    return to_datetime(ts).date()


def day_start(day: date) -> int:
    return from_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))


def parse_period(text: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (start, end) moments of that UTC calendar month, end exclusive."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match:
        raise TimeError(f"not a period: {text!r} (expected YYYY-MM, e.g. 2026-11)")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1970:
        raise TimeError(f"not a period: {text!r} (expected YYYY-MM, e.g. 2026-11)")
    start = day_start(date(year, month, 1))
    end = day_start(date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1))
    return start, end


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]
