"""Builds racing each other: two weeks at once on one database, five times over."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime

import pytest
from jeudis_cli import REPO, run
from sqlmodel import select

from newsletter.build import build_issue
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.errors import CalendarError
from newsletter.locks import instance_lock
from newsletter.models import ContentItem, Delivery, Issue
from newsletter.schedule import run_weekly

# Friday 2026-11-27, 15:00 Paris: this week's issue (2026-W48, a late catch-up) and the coming
# Thursday's (2026-W49) are both buildable.
FRIDAY = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
WEEKS = (date(2026, 11, 26), date(2026, 12, 3))


def race(settings_list, days, clock) -> list[BaseException]:
    """Build each day from its own thread (and its own settings), all released at once."""
    barrier = threading.Barrier(len(days))
    errors: list[BaseException] = []

    def worker(settings, day):
        try:
            with open_session(settings) as session:
                barrier.wait()
                build_issue(session, settings, day, clock)
        except CalendarError:
            pass  # a refusal is a correct answer when the later week won the race
        except BaseException as exc:  # noqa: BLE001 — collected and asserted by the caller
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(s, d))
        for s, d in zip(settings_list, days, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.parametrize("attempt", range(5))
def test_two_weeks_built_at_once_never_crash_and_number_in_date_order(tmp_path, attempt):
    assert run(tmp_path, "import", str(REPO / "content")).exit_code == 0
    assert run(tmp_path, "subscriber", "add", "lea@example.org").exit_code == 0
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    errors = race([settings, settings], WEEKS, lambda: FRIDAY)
    assert errors == []
    with open_session(settings) as session:
        issues = session.exec(select(Issue).order_by(Issue.thursday)).all()
        assert issues, "neither build recorded its issue"
        assert [i.number for i in issues] == list(range(1, len(issues) + 1))
        used = session.exec(select(ContentItem).where(ContentItem.status == "used")).all()
        assert len(used) == 3 * len(issues)  # no item picked by both builds
        assert all(i.outbox_done_at is not None for i in issues)


READERS = ("lea@example.org", "hugo@example.org", "ines@example.org")


def two_machines(tmp_path):
    """Two JEUDIS_HOME folders (no shared file) on the first one's database."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(first, "import", str(REPO / "content")).exit_code == 0
    for address in READERS:
        assert run(first, "subscriber", "add", address).exit_code == 0
    settings = load_settings({"JEUDIS_HOME": str(first)})
    other = load_settings({"JEUDIS_HOME": str(second), "JEUDIS_DATABASE_URL": settings.db_url})
    return settings, other


@pytest.mark.parametrize("attempt", range(5))
def test_two_machines_build_the_same_week_at_once(tmp_path, attempt):
    first, second = two_machines(tmp_path)
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    errors = race([first, second], (date(2026, 11, 26), date(2026, 11, 26)), lambda: monday)
    assert errors == []
    with open_session(first) as session:
        (issue,) = session.exec(select(Issue)).all()
        rows = session.exec(select(Delivery).where(Delivery.issue_id == issue.id)).all()
        assert sorted(r.recipient for r in rows) == sorted(READERS)  # one row per reader
    # No orphan file: the outbox is a ledger in the database, nothing is written at build.
    assert [p for s in (first, second) for p in s.home.rglob("*.eml")] == []


def test_a_lock_held_on_one_machine_is_held_for_the_other(tmp_path):
    first, second = two_machines(tmp_path)
    with instance_lock(first, "build:2026-W48") as held:
        assert held
        with instance_lock(second, "build:2026-W48", wait=False) as other:
            assert not other
        with instance_lock(second, "build:2026-W49", wait=False) as other_week:
            assert other_week
    with instance_lock(second, "build:2026-W48", wait=False) as after:
        assert after


def test_two_schedulers_run_the_thursday_job_once(tmp_path, caplog):
    first, second = two_machines(tmp_path)
    thursday = lambda: datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # noqa: E731
    with (
        caplog.at_level(logging.INFO, logger="jeudis.scheduler"),
        instance_lock(first, "scheduler:weekly-build"),  # the first scheduler is at work
    ):
        assert run_weekly(second, thursday) is None
    assert "another scheduler of this instance is running it: skipped" in caplog.text
    with open_session(first) as session:
        assert session.exec(select(Issue)).all() == []
    assert run_weekly(second, thursday).created  # alone again, it runs the job
