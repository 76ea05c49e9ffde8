"""When the Thursday job is due, and the jobs the scheduler runs (same code as the CLI).

The guarantee of one issue per week lives in the database (Issue.week_key is unique and a
finished build is a no-op), so a catch-up run, a second scheduler or a manual `jeudis build`
can never produce a second issue or a second copy of a message.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from newsletter.build import BuildReport, build_issue
from newsletter.config import Settings
from newsletter.db import open_session
from newsletter.delivery import send_outbox
from newsletter.errors import JeudisError
from newsletter.weeks import Clock, thursday_of, week_key

log = logging.getLogger("jeudis.scheduler")
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


def run_weekly(settings: Settings, clock: Clock) -> BuildReport | None:
    """The Thursday job: build the due issue if any (idempotent), then send if configured."""
    thursday = due_thursday(clock(), settings)
    if thursday is None:
        log.info("no issue due yet this week (due %s)", send_moment(settings, clock().date()))
        return None
    try:
        with open_session(settings) as session:
            report = build_issue(session, settings, thursday, clock)
            if report.already_complete:
                log.info("%s already built: nothing to do", report.issue.week_key)
            else:
                log.info(
                    "built %s n°%s: %s messages",
                    report.issue.week_key,
                    report.issue.number,
                    report.written,
                )
            if settings.send_after_build:
                send_outbox(session, settings, clock)
    except JeudisError as exc:
        log.error("weekly build for %s failed: %s", thursday, exc)
        return None
    return report


def run_feeds(settings: Settings, clock: Clock) -> None:
    """The daily job: fetch every followed feed (errors are recorded per feed)."""
    from newsletter.feed_service import fetch_all

    with open_session(settings) as session:
        for report in fetch_all(session, settings, clock):
            log.info("feed: %s", report)


def run_send(settings: Settings, clock: Clock) -> None:
    """The frequent job (when delivery is automatic): drain the outbox — confirmations of
    new sign-ups, retries of temporary failures. Sending is resumable and never sends twice."""
    try:
        with open_session(settings) as session:
            report = send_outbox(session, settings, clock)
        log.info("send: %s", report.summary())
    except JeudisError as exc:
        log.error("send failed: %s", exc)
