"""An editor's own subject for a week's issue: stored by week before the build, used by it.

Without one, the subject is the news headline (newsletter.render.issue_subject). Once a week
is built its subject is history: its messages are written, so it can no longer change.
"""

from __future__ import annotations

from sqlmodel import Session, select

from newsletter.audit import record
from newsletter.errors import ConflictError, InputError
from newsletter.markup import plain
from newsletter.models import Issue, IssueSubject
from newsletter.render import SUBJECT_MAX
from newsletter.typography import typeset
from newsletter.weeks import Clock, parse_week_key


def chosen_subject(session: Session, week: str) -> str | None:
    """The subject an editor set for `week`, if any."""
    row = session.get(IssueSubject, week)
    return row.subject if row is not None else None


def set_subject(
    session: Session, week: str, text: str | None, clock: Clock, actor: str
) -> str | None:
    """Store (or, with empty text, remove) the subject of a week not built yet.

    Returns the subject as readers will see it (French typography applied). Setting the
    same subject twice changes nothing (and logs nothing); a change is logged for `actor`."""
    week = parse_week_key(week)
    built = session.exec(select(Issue).where(Issue.week_key == week)).first()
    if built is not None:
        raise ConflictError(
            f"{week}: already built on {built.built_at:%Y-%m-%d} with the subject "
            f"« {built.subject} »; its messages are written and keep it"
        )
    shown = typeset(plain(text))
    if len(shown) > SUBJECT_MAX:
        raise InputError(
            f"subject: {len(shown)} characters, at most {SUBJECT_MAX} (what a phone shows)"
        )
    row = session.get(IssueSubject, week)
    if not shown:
        if row is not None:
            session.delete(row)
            record(session, actor, "issue.subject", f"issue:{week}", "(cleared)", clock=clock)
        return None
    if row is None or row.subject != shown:
        session.merge(IssueSubject(week_key=week, subject=shown, updated_at=clock()))
        record(session, actor, "issue.subject", f"issue:{week}", shown, clock=clock)
    return shown
