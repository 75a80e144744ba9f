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

# SPEC §6 bounds: timestamps from 1970-01-01 up to the end of 9999, durations up to 100
# years (of 365.25 days).
MIN_TS = 0
END_TS = 253_402_300_800 * US  # 10000-01-01T00:00:00Z, exclusive
MAX_DURATION_US = 36_525 * DAY_US
_EXAMPLE = "expected UTC ISO-8601, e.g. 2026-11-01T00:00:00Z"


class TimeError(ValueError):
    pass


def from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def to_datetime(ts: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ts)


def shown(text: str, limit: int = 40) -> str:
    """``repr`` of a user's text, cut short: an error message stays one short line."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def parse_ts(text: object) -> int:
    """Parse an ISO-8601 timestamp. ``Z`` or an offset; no zone means UTC; a bare date
    means midnight UTC."""
    if not isinstance(text, str) or not text.strip():
        shown_text = shown(text) if isinstance(text, str) else repr(text)[:40]
        raise TimeError(f"not a timestamp: {shown_text} ({_EXAMPLE})")
    raw = text.strip()
    candidate = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        if len(candidate) == 10:
            parsed_date = date.fromisoformat(candidate)
            moment = datetime(parsed_date.year, parsed_date.month, parsed_date.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise TimeError(f"not a timestamp: {shown(raw)} ({_EXAMPLE})") from None
    try:
        return from_datetime(moment)
    except OverflowError:  # an offset pushed 9999-12-31 past the last year (or 0001 before)
        raise TimeError(f"timestamp {shown(raw)} is not between the years 1970 and 9999"
                        ) from None


def check_ts(ts: int, what: str = "timestamp") -> int:
    """``ts`` if it lies in the years 1970 to 9999 (SPEC §6), else TimeError."""
    if not MIN_TS <= ts < END_TS:
        raise TimeError(f"{what} must be between the years 1970 and 9999")
    return ts


def parse_input_ts(text: object) -> int:
    """``parse_ts`` plus the bounds: how the border (files, --at) reads a timestamp."""
    ts = parse_ts(text)
    try:
        return check_ts(ts)
    except TimeError:
        raise TimeError(f"timestamp {shown(str(text).strip())} is not between the years "
                        "1970 and 9999") from None


def fmt_ts(ts: int) -> str:
    moment = to_datetime(ts)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``6h``, ``2d``, ``1w`` or combinations (``1h30m``) -> microseconds,
    at most 100 years (SPEC §6)."""
    raw = text.strip().replace(" ", "").lower()
    if not _DURATION_FULL.fullmatch(raw):
        raise TimeError(f"not a duration: {shown(text)} (examples: 90s, 30m, 6h, 2d, 1w, 1h30m)")
    parts = _DURATION.findall(raw)
    # 15 digits of any unit is already far beyond 100 years: no huge int is ever built
    if any(len(n.lstrip("0")) > 15 for n, _unit in parts):
        raise TimeError(f"duration {shown(text)} is longer than 100 years")
    total = sum(int(n) * _DURATION_UNITS[unit] for n, unit in parts) * US
    if total <= 0:
        raise TimeError(f"duration must be positive: {shown(text)}")
    if total > MAX_DURATION_US:
        raise TimeError(f"duration {shown(text)} is longer than 100 years")
    return total


def day_of(ts: int) -> date:
    return to_datetime(ts).date()


def day_start(day: date) -> int:
    return from_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))


def parse_period(text: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (start, end) moments of that UTC calendar month, end exclusive;
    ``YYYY-Qn`` -> those of the calendar quarter n (SPEC §9 fee periods)."""
    quarter = re.fullmatch(r"(\d{4})-Q([1-4])", text.strip())
    if quarter:
        year, q = int(quarter.group(1)), int(quarter.group(2))
        if year < 1970 or (year, q) == (9999, 4):
            raise TimeError(f"not a period: {shown(text)} (quarters run from 1970-Q1 to "
                            "9999-Q3)")
        start = day_start(date(year, 3 * q - 2, 1))
        end = day_start(date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1))
        return start, end
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match:
        raise TimeError(f"not a period: {shown(text)} (expected YYYY-MM, e.g. 2026-11, "
                        "or a quarter YYYY-Qn, e.g. 2027-Q1)")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1970:
        raise TimeError(f"not a period: {shown(text)} (expected YYYY-MM, e.g. 2026-11)")
    if (year, month) == (9999, 12):  # it would end in the year 10000, beyond every bound
        raise TimeError(f"period {text.strip()} ends after the year 9999 (the last period is "
                        "9999-11)")
    start = day_start(date(year, month, 1))
    end = day_start(date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1))
    return start, end


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def is_quarter(label: str) -> bool:
    return "Q" in label


def period_label(ts: int, quarterly: bool) -> str:
    """The month (or quarter) holding moment ``ts``."""
    d = day_of(ts)
    return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}" if quarterly else f"{d.year:04d}-{d.month:02d}"
