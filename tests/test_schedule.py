"""The Thursday job with a fake clock: due times, daylight saving, catch-up, no double run."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from jeudis_cli import REPO, run
from sqlmodel import select

from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.models import Delivery, Issue
from newsletter.schedule import due_thursday, run_unfinished, run_weekly
from scheduler import make_scheduler

PARIS_WINTER_8AM = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # Thursday 08:00 CET
PARIS_SUMMER_8AM = datetime(2026, 7, 2, 6, 0, tzinfo=UTC)  # Thursday 08:00 CEST


@pytest.fixture
def settings(tmp_path):
    return load_settings({"JEUDIS_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 26, 6, 59, tzinfo=UTC), None),  # Thursday 07:59 Paris
        (PARIS_WINTER_8AM, date(2026, 11, 26)),
        (datetime(2026, 11, 29, 22, 59, tzinfo=UTC), date(2026, 11, 26)),  # Sunday 23:59 Paris
        (datetime(2026, 11, 29, 23, 0, tzinfo=UTC), None),  # Monday 00:00 Paris: new week
        (datetime(2026, 7, 2, 5, 59, tzinfo=UTC), None),  # summer time: 07:59 Paris
        (PARIS_SUMMER_8AM, date(2026, 7, 2)),
    ],
)
def test_due_thursday(settings, now, expected):
    assert due_thursday(now, settings) == expected


def test_send_time_is_configurable(tmp_path):
    settings = load_settings({"JEUDIS_HOME": str(tmp_path), "JEUDIS_SEND_TIME": "06:30"})
    assert due_thursday(datetime(2026, 11, 26, 5, 30, tzinfo=UTC), settings) == date(2026, 11, 26)
    assert due_thursday(datetime(2026, 11, 26, 5, 29, tzinfo=UTC), settings) is None


@pytest.mark.parametrize(
    ("now", "fires"),
    [
        (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), PARIS_WINTER_8AM),
        (datetime(2026, 6, 29, 9, 0, tzinfo=UTC), PARIS_SUMMER_8AM),
        (datetime(2026, 10, 20, 9, 0, tzinfo=UTC), datetime(2026, 10, 22, 6, 0, tzinfo=UTC)),
        # The week clocks go back (25 Oct 2026): the next Thursday is at 07:00 UTC again.
        (datetime(2026, 10, 24, 9, 0, tzinfo=UTC), datetime(2026, 10, 29, 7, 0, tzinfo=UTC)),
    ],
)
def test_cron_trigger_fires_thursday_8am_paris(settings, now, fires):
    job = make_scheduler(settings).get_job("weekly-build")
    assert job.trigger.get_next_fire_time(None, now) == fires


def test_catch_up_runs_once_within_the_week_never_twice(tmp_path):
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    run(tmp_path, "import", str(REPO / "content"))
    run(tmp_path, "subscriber", "add", "lea@example.org")

    def at(when):
        return run_weekly(settings, lambda: when)

    assert at(datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) is None  # Wednesday: not due
    # Down at 08:00 on Thursday, back on Friday afternoon: catches up.
    friday = at(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    assert friday.created and friday.issue.week_key == "2026-W48"
    # The scheduler's own run, a restart, a second machine: nothing more.
    assert at(datetime(2026, 11, 27, 15, 1, tzinfo=UTC)).already_complete
    assert at(datetime(2026, 11, 29, 20, 0, tzinfo=UTC)).already_complete
    # Next Monday: the next week's issue is not due yet, and last week's is not resent.
    assert at(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)) is None
    nxt = at(datetime(2026, 12, 3, 7, 0, tzinfo=UTC))
    assert nxt.created and nxt.issue.number == 2
    with open_session(settings) as session:
        assert [i.week_key for i in session.exec(select(Issue))] == ["2026-W48", "2026-W49"]
    with open_session(settings) as session:
        rows = session.exec(select(Delivery).where(Delivery.issue_id == 1)).all()
    assert [d.recipient for d in rows] == ["lea@example.org"]


def test_a_missed_week_is_not_sent_late(tmp_path):
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    run(tmp_path, "import", str(REPO / "content"))
    # Down from Wednesday of W48 until Tuesday of W49.
    assert run_weekly(settings, lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC)) is None
    with open_session(settings) as session:
        assert session.exec(select(Issue)).all() == []


def test_a_dry_queue_is_logged_not_crashed(tmp_path, caplog):
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    assert run_weekly(settings, lambda: PARIS_WINTER_8AM) is None
    assert "no news for 2026-11-26" in caplog.text


def test_send_after_build_delivers_through_the_relay(tmp_path, smtp_server):
    env = {
        "JEUDIS_HOME": str(tmp_path),
        "JEUDIS_SEND_AFTER_BUILD": "true",
        "JEUDIS_SMTP_URL": smtp_server.url,
    }
    settings = load_settings(env)
    run(tmp_path, "import", str(REPO / "content"))
    run(tmp_path, "subscriber", "add", "lea@example.org")
    run(tmp_path, "subscriber", "add", "hugo@example.org")
    report = run_weekly(settings, lambda: PARIS_WINTER_8AM)
    assert report.created
    received = sorted(r for m in smtp_server.handler.messages for r in m.recipients)
    assert received == ["hugo@example.org", "lea@example.org"]
    # The catch-up at a restart sends nothing more.
    run_weekly(settings, lambda: PARIS_WINTER_8AM)
    assert len(smtp_server.handler.messages) == 2
    jobs = {job.id for job in make_scheduler(settings).get_jobs()}
    assert jobs == {"weekly-build", "weekly-catch-up", "daily-feeds", "send-outbox"}


def test_without_send_after_build_nothing_leaves(settings):
    assert {job.id for job in make_scheduler(settings).get_jobs()} == {
        "weekly-build",
        "weekly-catch-up",
        "daily-feeds",
    }


def test_a_build_its_leader_left_unfinished_is_taken_over_by_the_catch_up(tmp_path, caplog):
    """Two schedulers: the leader dies mid-build at 08:00 (the issue recorded, its outbox not
    finished); the other one's catch-up job finishes it within minutes, not next week."""
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    run(tmp_path, "import", str(REPO / "content"))
    run(tmp_path, "subscriber", "add", "lea@example.org")
    run(tmp_path, "subscriber", "add", "hugo@example.org")
    assert run_unfinished(settings, lambda: datetime(2026, 11, 26, 6, 0, tzinfo=UTC)) is None
    assert run_weekly(settings, lambda: PARIS_WINTER_8AM).created
    with open_session(settings) as session:  # what a leader killed mid-outbox leaves
        issue = session.exec(select(Issue)).one()
        issue.outbox_done_at = None
        session.add(issue)
        session.execute(sa.delete(Delivery).where(Delivery.recipient == "hugo@example.org"))
        session.commit()
    later = lambda: PARIS_WINTER_8AM + timedelta(minutes=15)  # noqa: E731
    report = run_unfinished(settings, later)
    assert report is not None and report.written == 1 and not report.created
    with open_session(settings) as session:
        assert session.exec(select(Issue)).one().outbox_done_at is not None
        rows = session.exec(select(Delivery)).all()
    assert sorted(d.recipient for d in rows) == ["hugo@example.org", "lea@example.org"]
    caplog.clear()
    assert run_unfinished(settings, later) is None  # finished: nothing to do, nothing said
    assert caplog.text == ""
