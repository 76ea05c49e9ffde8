"""The long-running Thursday job (`jeudis scheduler`): APScheduler 3, cron in the instance's
time zone.

At start it logs what it will do, catches up once if this week's issue is due and missing
(the machine was down at 08:00), then runs the same build every week and fetches feeds daily.
Any number of schedulers may run against one PostgreSQL database: each job takes a leader
lock, so one of them runs it (newsletter.schedule).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from functools import partial
from urllib.parse import urlsplit

import sqlalchemy as sa
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.config import Settings
from newsletter.schedule import run_feeds, run_returns, run_send, run_unfinished, run_weekly
from newsletter.weeks import Clock, system_clock, week_key

WEEK = 7 * 24 * 3600
SEND_EVERY_MINUTES = 5  # confirmations of new sign-ups should not wait a week
CATCH_UP_MINUTES = 15  # a build its leader left unfinished is taken over this soon
log = logging.getLogger("jeudis.scheduler")


def make_scheduler(settings: Settings, clock: Clock = system_clock, **kwargs) -> BlockingScheduler:
    """A scheduler with the weekly build and its catch-up, the daily feed fetch, and sending
    and reading returns when configured (not started)."""
    scheduler = BlockingScheduler(timezone=settings.tz, **kwargs)
    hour, minute = settings.send_time.split(":")
    weekly = CronTrigger(
        day_of_week=settings.send_day, hour=int(hour), minute=int(minute), timezone=settings.tz
    )
    scheduler.add_job(
        run_weekly,
        weekly,
        args=[settings, clock],
        id="weekly-build",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=WEEK,
    )
    every = partial(_every, scheduler, args=[settings, clock])
    every(run_unfinished, CATCH_UP_MINUTES, "weekly-catch-up")
    fetch_hour, fetch_minute = settings.feed_fetch_time.split(":")
    daily = CronTrigger(hour=int(fetch_hour), minute=int(fetch_minute), timezone=settings.tz)
    scheduler.add_job(
        run_feeds,
        daily,
        args=[settings, clock],
        id="daily-feeds",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=24 * 3600,
    )
    if settings.send_after_build:
        every(run_send, SEND_EVERY_MINUTES, "send-outbox")
    if settings.inbound_maildir or settings.inbound_imap_url:  # bounces, complaints, mailto
        every(run_returns, settings.inbound_poll_minutes, "read-returns")
    return scheduler


def _every(scheduler: BlockingScheduler, job, minutes: float, name: str, args: list) -> None:
    """A job every `minutes`, one run at a time, missed runs folded into one."""
    scheduler.add_job(
        job, IntervalTrigger(minutes=minutes), args=args, id=name, coalesce=True, max_instances=1
    )


def _when(moment: datetime | None, settings: Settings) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(settings.tz).strftime("%A %Y-%m-%d %H:%M %Z")


def startup_lines(settings: Settings, scheduler: BlockingScheduler, now: datetime) -> list[str]:
    """What the scheduler says at start: the instance, the time zone, the next runs, sending."""
    database = sa.make_url(settings.db_url).render_as_string(hide_password=True)
    build = scheduler.get_job("weekly-build").trigger.get_next_fire_time(None, now)
    fetch = scheduler.get_job("daily-feeds").trigger.get_next_fire_time(None, now)
    if settings.send_after_build:
        sending = (
            f"on: each issue is sent right after its build, and the outbox is "
            f"drained every {SEND_EVERY_MINUTES} minutes"
        )
    else:
        sending = (
            "off: built issues wait in the outbox for `jeudis send` "
            "(set send_after_build = true in jeudis.toml, or "
            "JEUDIS_SEND_AFTER_BUILD=1, to send them automatically)"
        )
    return [
        f"instance:        {settings.home.resolve()}",
        f"database:        {database}",
        f"time zone:       {settings.timezone}",
        f"next issue:      {_when(build, settings)}"
        + (f" (builds {week_key(build.date())})" if build else ""),
        f"next feed fetch: {_when(fetch, settings)}",
        f"sending:         {sending}",
        f"returns:         {_returns(settings)}",
    ]


def _returns(settings: Settings) -> str:
    source = settings.inbound_maildir or urlsplit(settings.inbound_imap_url).hostname
    if not source:
        return "not read (set inbound_maildir or inbound_imap_url to read bounces)"
    return f"read every {settings.inbound_poll_minutes} minutes from {source}"


def run_scheduler(settings: Settings, clock: Clock = system_clock) -> None:
    """Log the start block, catch up once, then run the jobs until interrupted."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(settings.log_dir / "scheduler.log")],
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # its job-store chatter
    scheduler = make_scheduler(settings, clock)
    log.info(
        "jeudis scheduler starting\n  %s", "\n  ".join(startup_lines(settings, scheduler, clock()))
    )
    run_weekly(settings, clock)  # catch up once if this week's issue is due and missing
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
