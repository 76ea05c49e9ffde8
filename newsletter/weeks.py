"""ISO weeks and Thursdays, and the one injectable clock."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from newsletter.errors import InputError

Clock = Callable[[], datetime]
THURSDAY = 3  # date.weekday()
_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)


def system_clock() -> datetime:
    """Now, timezone-aware (UTC)."""
    return datetime.now(UTC)


def week_key(day: date) -> str:
    """The ISO week of a day, as `2026-W48`."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week_key(value: str) -> str:
    """Validate and normalise a week key such as `2026-W48`."""
    match = _WEEK_RE.match(value.strip())
    if not match:
        raise InputError(f"week: {value!r} is not an ISO week like 2026-W48")
    year, week = int(match[1]), int(match[2])
    try:
        date.fromisocalendar(year, week, 4)
    except ValueError:
        raise InputError(
            f"week: {value!r} does not exist (year {year} has no week {week})"
        ) from None
    return f"{year}-W{week:02d}"


def thursday_of(key: str) -> date:
    """The Thursday that dates the issue of an ISO week."""
    key = parse_week_key(key)
    return date.fromisocalendar(int(key[:4]), int(key[6:]), 4)


def upcoming_thursday(today: date) -> date:
    """Today if it is a Thursday, else the next Thursday."""
    return today + timedelta(days=(THURSDAY - today.weekday()) % 7)


def thursdays(start: date, count: int) -> list[date]:
    """`count` consecutive Thursdays from the upcoming one."""
    first = upcoming_thursday(start)
    return [first + timedelta(weeks=n) for n in range(count)]


def parse_date(value: str, field: str = "date") -> date:
    """A YYYY-MM-DD date from user input, or an InputError naming the field."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{field}: {value!r} is not a date like 2026-11-26") from None
