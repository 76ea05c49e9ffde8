"""The calendar's rules, pure: when an issue is due, when it becomes public, which weeks a
build may take. Values in, values out (the clock and the database stay in the callers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from newsletter.config import Settings
from newsletter.errors import CalendarError
from newsletter.weeks import thursday_of, upcoming_thursday, week_key

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def send_moment(settings: Settings, day_in_week: date) -> datetime:
    """The local moment the issue of `day_in_week`'s ISO week is due (Thursday 08:00 by default)."""
    monday = day_in_week - timedelta(days=day_in_week.weekday())
    hour, minute = (int(part) for part in settings.send_time.split(":"))
    day = monday + timedelta(days=DAYS.index(settings.send_day))
    return datetime.combine(day, time(hour, minute), tzinfo=settings.tz)


def due_thursday(now: datetime, settings: Settings) -> date | None:
    """The Thursday whose issue should exist by `now`, or None before this week's send time.

    A machine that was down at 08:00 catches up any time later in the same ISO week; after the
    week is over the missed issue is not sent late (the next week's is due instead)."""
    local = now.astimezone(settings.tz)
    if local < send_moment(settings, local.date()):
        return None
    return thursday_of(week_key(local.date()))


def public_from(settings: Settings, thursday: date, built_at: datetime) -> datetime:
    """When an issue's web page and feed entry appear: its scheduled send time, or its build
    if it was built later than that (a late catch-up is public at once)."""
    return max(send_moment(settings, thursday), built_at)


@dataclass(frozen=True)
class LastIssue:
    week: str
    number: int
    thursday: date


def check_build_week(
    thursday: date, today: date, last: LastIssue | None, *, force: bool = False
) -> None:
    """Refuse a week the calendar does not allow (CalendarError, exit 2).

    A build takes this week's Thursday (a late catch-up) or the coming one. `force` lifts that
    window for a rare repair, but never the order: numbers follow dates, so a week earlier
    than the last one built is refused even then."""
    week = f"{week_key(thursday)} ({thursday})"
    if last is not None and thursday < last.thursday:
        raise CalendarError(
            f"{week} comes before the last built issue, {last.week} n°{last.number} "
            f"({last.thursday}): issues are numbered in date order, so it cannot be built now"
        )
    if force:
        return
    this_week, coming = thursday_of(week_key(today)), upcoming_thursday(today)
    hint = f"build accepts the coming Thursday, {coming} (--force to repair an exception)"
    if thursday < this_week:
        raise CalendarError(f"{week} is in the past: {hint}")
    if thursday > coming:
        ahead = (thursday - coming).days // 7
        raise CalendarError(f"{week} is {ahead} week(s) after the coming one: {hint}")
