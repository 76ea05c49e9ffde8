"""The calendar rules of `build` and of the Thursday job, with a fake clock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from jeudis_cli import MONDAY, REPO, run
from sqlmodel import select

from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.models import ContentItem, Issue
from newsletter.schedule import run_weekly
from newsletter.scheduler import make_scheduler, startup_lines

FRIDAY = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 15:00 Paris; the coming Thursday: 12-03


def instance(home, readers=("lea@example.org",)):
    assert run(home, "import", str(REPO / "content")).exit_code == 0
    for address in readers:
        assert run(home, "subscriber", "add", address).exit_code == 0
    return load_settings({"JEUDIS_HOME": str(home)})


def state(settings):
    with open_session(settings) as session:
        issues = [(i.week_key, i.number) for i in session.exec(select(Issue).order_by(Issue.id))]
        used = session.exec(select(ContentItem).where(ContentItem.status == "used")).all()
    return issues, len(used)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        ("2020-01-02", "2020-W01 (2020-01-02) is in the past"),
        ("2029-06-07", "2029-W23 (2029-06-07) is 132 week(s) after the coming one"),
        ("2026-12-03", "2026-W49 (2026-12-03) is 1 week(s) after the coming one"),
    ],
)
def test_a_week_outside_the_calendar_is_refused_and_consumes_nothing(tmp_path, day, why):
    settings = instance(tmp_path)
    result = run(tmp_path, "build", "--date", day)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {why}: build accepts the coming Thursday, 2026-11-26 "
        "(--force to repair an exception)"
    ]
    assert state(settings) == ([], 0)


def test_force_builds_a_week_ahead_but_never_before_the_last_one(tmp_path):
    settings = instance(tmp_path)
    assert run(tmp_path, "build", "--date", "2026-12-10", "--force").exit_code == 0
    result = run(tmp_path, "build", "--date", "2026-11-26", "--force")
    assert result.exit_code == 2
    assert "2026-W48 (2026-11-26) comes before the last built issue, 2026-W50 n°1" in (
        result.stderr
    )
    assert state(settings) == ([("2026-W50", 1)], 3)


def test_an_earlier_week_after_a_later_one_is_refused(tmp_path):
    settings = instance(tmp_path)
    # Friday: the coming Thursday's issue is built; this week's (a late catch-up) no longer can.
    assert run(tmp_path, "build", now=FRIDAY).exit_code == 0
    result = run(tmp_path, "build", "--date", "2026-11-26", now=FRIDAY)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and "numbered in date order" in result.stderr
    assert state(settings) == ([("2026-W49", 1)], 3)


def test_a_week_already_built_is_a_no_op_even_once_past(tmp_path):
    settings = instance(tmp_path)
    assert run(tmp_path, "build").exit_code == 0
    again = run(tmp_path, "build", "--date", "2026-11-26", now=datetime(2027, 3, 1, tzinfo=UTC))
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    assert state(settings) == ([("2026-W48", 1)], 3)


def test_a_build_for_nobody_says_so(tmp_path):
    instance(tmp_path, readers=())
    result = run(tmp_path, "build")
    assert result.exit_code == 0
    assert "0 message(s) written" in result.stdout
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: no active reader")
    assert "jeudis subscriber add" in warning and "jeudis subscriber import" in warning
    with_reader = tmp_path / "other"
    instance(with_reader)
    assert "warning" not in run(with_reader, "build").stderr


def test_the_scheduler_never_builds_a_week_older_than_the_last_built(tmp_path, caplog):
    # Friday: the demo (or `build`) makes the coming Thursday's issue; then the scheduler
    # starts the same Friday, when this week's Thursday is past its send time.
    settings = instance(tmp_path)
    assert run(tmp_path, "build", now=FRIDAY).exit_code == 0
    with caplog.at_level(logging.INFO, logger="jeudis.scheduler"):
        assert run_weekly(settings, lambda: FRIDAY) is None
    assert "not building the issue of 2026-11-26" in caplog.text
    assert state(settings) == ([("2026-W49", 1)], 3)
    # Its own Thursday comes: nothing more to do.
    report = run_weekly(settings, lambda: datetime(2026, 12, 3, 7, 0, tzinfo=UTC))
    assert report.already_complete and state(settings) == ([("2026-W49", 1)], 3)


def test_the_scheduler_says_what_it_will_do(tmp_path):
    env = {
        "JEUDIS_HOME": str(tmp_path),
        "JEUDIS_DATABASE_URL": "postgresql+psycopg://jeudis:s3cret@db.example.org/jeudis",
    }
    settings = load_settings(env)
    lines = startup_lines(settings, make_scheduler(settings), MONDAY)
    text = "\n".join(lines)
    assert f"instance:        {tmp_path.resolve()}" in lines
    assert "database:        postgresql+psycopg://jeudis:***@db.example.org/jeudis" in lines
    assert "s3cret" not in text
    assert "time zone:       Europe/Paris" in lines
    assert "next issue:      Thursday 2026-11-26 08:00 CET (builds 2026-W48)" in lines
    assert "next feed fetch: Tuesday 2026-11-24 06:00 CET" in lines
    assert "sending:         off" in text and "send_after_build = true" in text
    assert "returns:         not read" in text
    imap = "imaps://jeudis:s3cret@imap.example.org/INBOX"
    sending = load_settings(
        {**env, "JEUDIS_SEND_AFTER_BUILD": "1", "JEUDIS_INBOUND_IMAP_URL": imap}
    )
    text = "\n".join(startup_lines(sending, make_scheduler(sending), MONDAY))
    assert "sending:         on" in text and "s3cret" not in text
    assert "returns:         read every 5 minutes from imap.example.org" in text


def test_jeudis_scheduler_is_a_command(tmp_path):
    result = run(tmp_path, "scheduler", "--help")
    assert result.exit_code == 0 and "Thursday" in result.stdout


def test_the_thursday_job_refreshes_the_static_site_at_the_send_time(tmp_path):
    settings = instance(tmp_path)
    assert run(tmp_path, "build", now=MONDAY).exit_code == 0
    page = settings.archive_dir / "archive" / "2026-W48" / "index.html"
    assert not page.exists()
    report = run_weekly(settings, lambda: datetime(2026, 11, 26, 7, 0, tzinfo=UTC))
    assert report.already_complete and page.exists()
