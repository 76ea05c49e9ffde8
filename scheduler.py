"""The long-running Thursday job: `python scheduler.py` (APScheduler 3, cron in Europe/Paris).

At start it catches up once if this week's issue is due and missing (the machine was down at
08:00); then a cron trigger runs the same build every week and fetches feeds daily.
"""

from __future__ import annotations

import contextlib
import logging
import sys

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.config import Settings, load_settings
from newsletter.errors import JeudisError
from newsletter.returns import poll as poll_returns
from newsletter.schedule import run_feeds, run_send, run_weekly
from newsletter.weeks import Clock, system_clock

WEEK = 7 * 24 * 3600
SEND_EVERY_MINUTES = 5  # confirmations of new sign-ups should not wait a week


def make_scheduler(settings: Settings, clock: Clock = system_clock, **kwargs) -> BlockingScheduler:
    """A scheduler with the weekly build and the daily feed fetch (not started)."""
    scheduler = BlockingScheduler(timezone=settings.tz, **kwargs)
    hour, minute = settings.send_time.split(":")
    scheduler.add_job(
        run_weekly,
        CronTrigger(
            day_of_week=settings.send_day, hour=int(hour), minute=int(minute), timezone=settings.tz
        ),
        args=[settings, clock],
        id="weekly-build",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=WEEK,
    )
    fetch_hour, fetch_minute = settings.feed_fetch_time.split(":")
    scheduler.add_job(
        run_feeds,
        CronTrigger(hour=int(fetch_hour), minute=int(fetch_minute), timezone=settings.tz),
        args=[settings, clock],
        id="daily-feeds",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=24 * 3600,
    )
    if settings.send_after_build:
        scheduler.add_job(
            run_send,
            IntervalTrigger(minutes=SEND_EVERY_MINUTES),
            args=[settings, clock],
            id="send-outbox",
            coalesce=True,
            max_instances=1,
        )
    if settings.inbound_maildir or settings.inbound_imap_url:  # bounces, complaints, mailto
        scheduler.add_job(
            poll_returns,
            IntervalTrigger(minutes=settings.inbound_poll_minutes),
            args=[settings, clock],
            id="read-returns",
            coalesce=True,
            max_instances=1,
        )
    return scheduler


def main() -> int:
    try:
        settings = load_settings()
    except JeudisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(settings.log_dir / "scheduler.log")],
    )
    run_weekly(settings, system_clock)  # catch up once if this week's issue is due and missing
    scheduler = make_scheduler(settings)
    for job in scheduler.get_jobs():
        logging.info("scheduled %s: %s", job.id, job.trigger)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
