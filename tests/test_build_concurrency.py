"""Builds racing each other: two weeks at once on one database, five times over."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from jeudis_cli import REPO, run
from sqlmodel import select

from newsletter.build import build_issue
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.errors import CalendarError
from newsletter.models import ContentItem, Issue

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
