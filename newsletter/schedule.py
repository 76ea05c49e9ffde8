"""The jobs the scheduler runs (same service functions as the CLI), each under a leader lock.

The guarantee of one issue per week lives in the database (Issue.week_key is unique, a week
is built under an instance-wide lock and a finished build is a no-op), so a catch-up run, a
second scheduler or a manual `jeudis build` can never produce a second issue or a second copy
of a message. The leader lock on top means two schedulers on two machines run each job once:
the one that gets the lock runs it, the other logs that it left it to its peer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlmodel import select

from newsletter.archive import publish_site
from newsletter.audit import record
from newsletter.build import BuildReport, build_issue, issue_for_week
from newsletter.config import Settings
from newsletter.db import open_session
from newsletter.delivery import send_outbox
from newsletter.errors import CalendarError, JeudisError
from newsletter.feed_service import fetch_all
from newsletter.locks import instance_lock
from newsletter.models import Issue
from newsletter.returns import poll as poll_returns
from newsletter.timetable import due_thursday, send_moment
from newsletter.weeks import Clock, week_key

__all__ = [
    "due_thursday",
    "run_feeds",
    "run_returns",
    "run_send",
    "run_unfinished",
    "run_weekly",
    "send_moment",
]

log = logging.getLogger("jeudis.scheduler")


def as_leader(settings: Settings, job: str, run: Callable[[], object]) -> object | None:
    """Run `run` if no other scheduler of this instance is running `job` right now."""
    with instance_lock(settings, f"scheduler:{job}", wait=False) as leader:
        if not leader:
            log.info("%s: another scheduler of this instance is running it: skipped", job)
            return None
        return run()


def run_weekly(settings: Settings, clock: Clock) -> BuildReport | None:
    """The Thursday job: build the due issue if any (idempotent), then send if configured."""
    return as_leader(settings, "weekly-build", lambda: _weekly(settings, clock))


def _weekly(settings: Settings, clock: Clock) -> BuildReport | None:
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
                written = f"{report.written} message(s) written"
                record(
                    session, "scheduler", "issue.build", f"issue:{report.issue.week_key}", written
                )
            # The static copy in $JEUDIS_HOME/site follows: the issue is public from now.
            publish_site(session, settings, clock())
            if settings.send_after_build:
                send_outbox(session, settings, clock)
    except CalendarError as exc:  # a later week is built already: never number backwards
        log.info("not building the issue of %s: %s", thursday, exc)
        return None
    except JeudisError as exc:
        log.error("weekly build for %s failed: %s", thursday, exc)
        return None
    return report


def run_unfinished(settings: Settings, clock: Clock) -> BuildReport | None:
    """The safety net, every few minutes: build the due week if its issue is missing or its
    outbox unfinished (a leader that died mid-build, a queue that was dry at 08:00 and was
    filled since), so a second scheduler takes over without waiting a week. Silent when the
    week is done or a later one is built."""
    if not _unfinished(settings, clock):
        return None
    log.info("the issue due this week is missing or unfinished: building it now")
    return run_weekly(settings, clock)


def _unfinished(settings: Settings, clock: Clock) -> bool:
    thursday = due_thursday(clock(), settings)
    if thursday is None:
        return False
    with open_session(settings) as session:
        issue = issue_for_week(session, week_key(thursday))
        if issue is not None:
            return issue.outbox_done_at is None
        later = select(Issue.id).where(Issue.thursday > thursday).limit(1)
        return session.exec(later).first() is None


def run_feeds(settings: Settings, clock: Clock) -> None:
    """The daily job: fetch every followed feed (errors are recorded per feed)."""
    as_leader(settings, "daily-feeds", lambda: _feeds(settings, clock))


def _feeds(settings: Settings, clock: Clock) -> None:
    with open_session(settings) as session:
        for report in fetch_all(session, settings, clock):
            log.info("feed: %s", report)


def run_send(settings: Settings, clock: Clock) -> None:
    """The frequent job (when delivery is automatic): drain the outbox — confirmations of
    new sign-ups, retries of temporary failures. Sending is resumable and never sends twice."""
    as_leader(settings, "send-outbox", lambda: _send(settings, clock))


def _send(settings: Settings, clock: Clock) -> None:
    try:
        with open_session(settings) as session:
            report = send_outbox(session, settings, clock)
        log.info("send: %s", report.summary())
    except JeudisError as exc:
        log.error("send failed: %s", exc)


def run_returns(settings: Settings, clock: Clock) -> object | None:
    """The inbound job: read bounces, complaints and mailto unsubscribes from the mailbox."""
    return as_leader(settings, "read-returns", lambda: poll_returns(settings, clock))
