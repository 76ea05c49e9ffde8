"""The Thursday job as service functions: plan, preview and build an issue.

The CLI, the scheduler and the web desk all call these; none re-implements a step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, func, select

from newsletter.config import Settings
from newsletter.delivery import write_issue_outbox
from newsletter.errors import QueueDryError
from newsletter.items_table import KINDS
from newsletter.locks import instance_lock
from newsletter.models import ContentItem, Issue, Subscriber
from newsletter.pick import Calendar, Selection, closes_on, never_out, pick, plan
from newsletter.publish import issue_url
from newsletter.queue import queued_items
from newsletter.render import IssueInfo, RenderedIssue, render
from newsletter.subjects import chosen_subject
from newsletter.timetable import LastIssue, check_build_week, public_from
from newsletter.weeks import Clock, thursday_of, thursdays, upcoming_thursday, week_key

KIND_LABELS = {"news": "news", "example": "inspiring example", "tool": "tool"}


@dataclass(frozen=True)
class BuildReport:
    issue: Issue
    created: bool  # False when the week had already been picked
    already_complete: bool  # True when a previous build had finished: nothing was done
    url: str  # the issue's public page, online from `public_at`
    public_at: datetime
    written: int = 0
    readers: int = 0  # active readers when the build ran (0: the issue went to nobody)


@dataclass(frozen=True)
class PlannedWeek:
    thursday: date
    week: str
    number: int
    selection: Selection
    built: bool  # the issue exists already: these are its recorded items


@dataclass(frozen=True)
class CalendarView:
    weeks: list[PlannedWeek]
    runway: dict[str, int]
    dry_since: dict[str, date | None]
    queued: dict[str, int]
    proposed: dict[str, int]  # waiting for an editor's approval: not in the runway
    never: list[ContentItem] = field(default_factory=list)  # will expire before their turn


HORIZON_WEEKS = 104  # how far ahead `plan` looks for items whose window closes too soon


def the_thursday(day: date) -> date:
    """The Thursday that dates the issue of `day`'s ISO week."""
    return thursday_of(week_key(day))


def _max_number(session: Session) -> int | None:
    return session.exec(select(func.max(Issue.number))).one()


def recorded_selection(session: Session, issue: Issue) -> Selection:
    """The items an existing issue was built with."""
    chosen = {
        "news": session.get(ContentItem, issue.news_id),
        "example": session.get(ContentItem, issue.example_id),
        "tool": session.get(ContentItem, issue.tool_id),
    }
    return Selection(thursday=issue.thursday, chosen=chosen)


def issue_for_week(session: Session, week: str) -> Issue | None:
    return session.exec(select(Issue).where(Issue.week_key == week)).first()


def calendar(session: Session, settings: Settings, today: date, count: int = 8) -> CalendarView:
    """What each of the next `count` Thursdays gets: recorded issues, then a simulation of
    the queue (each pick consuming its items) for the weeks not built yet."""
    coming = thursdays(today, count)
    built = {
        i.week_key: i for i in session.exec(select(Issue).where(col(Issue.thursday) >= coming[0]))
    }
    pending = [d for d in coming if week_key(d) not in built]
    candidates = queued_items(session)
    simulated: Calendar = plan(candidates, pending)
    by_day = {s.thursday: s for s in simulated.weeks}
    number = (_max_number(session) or settings.first_issue_number - 1) + 1
    weeks = []
    for day in coming:
        issue = built.get(week_key(day))
        if issue:
            weeks.append(
                PlannedWeek(
                    day, issue.week_key, issue.number, recorded_selection(session, issue), True
                )
            )
        else:
            weeks.append(PlannedWeek(day, week_key(day), number, by_day[day], False))
            number += 1
    rows = session.exec(
        select(ContentItem.kind, ContentItem.status, func.count())
        .where(col(ContentItem.status).in_(("queued", "proposed")))
        .group_by(ContentItem.kind, ContentItem.status)
    )
    counts = {(kind, status): n for kind, status, n in rows}
    queued = {kind: counts.get((kind, "queued"), 0) for kind in KINDS}
    proposed = {kind: counts.get((kind, "proposed"), 0) for kind in KINDS}
    never = _never_out(candidates, set(built), today)
    return CalendarView(weeks, simulated.runway, simulated.dry_since, queued, proposed, never)


def _never_out(candidates: list[ContentItem], built: set[str], today: date) -> list[ContentItem]:
    """The queued items whose window closes before their turn comes, simulated as far as the
    last window closes (at most HORIZON_WEEKS), soonest closing first."""
    closing = [day for item in candidates if (day := closes_on(item)) is not None]
    if not closing:
        return []
    count = min(HORIZON_WEEKS, max(1, (max(closing) - today).days // 7 + 2))
    horizon = [day for day in thursdays(today, count) if week_key(day) not in built]
    return sorted(never_out(candidates, plan(candidates, horizon)), key=closes_on)


def _dry_message(session: Session, selection: Selection) -> str:
    day = selection.thursday
    parts = []
    for kind in selection.missing:
        label = KIND_LABELS[kind]
        waiting = session.exec(
            select(func.count())
            .select_from(ContentItem)
            .where(ContentItem.kind == kind, ContentItem.status == "queued")
        ).one()
        last = session.exec(
            select(Issue)
            .join(ContentItem, col(ContentItem.issue_id) == Issue.id)
            .where(ContentItem.kind == kind)
            .order_by(col(Issue.thursday).desc())
        ).first()
        since = (
            f"dry since the issue of {last.thursday} ({last.week_key}) used the last one"
            if last
            else "no issue has used one yet"
        )
        extra = f"; {waiting} queued but none allowed that day (window or pin)" if waiting else ""
        parts.append(f"no {label} for {day} ({week_key(day)}): {since}{extra}")
    return "; ".join(parts) + " — queue one with `jeudis item add` or `jeudis import`"


def preview_issue(
    session: Session, settings: Settings, thursday: date, today: date
) -> tuple[IssueInfo, Selection, RenderedIssue]:
    """Render the issue that would go out on `thursday` without consuming anything.

    A week already built shows its recorded items; a later week shows what the queue would
    give once the weeks before it have taken their share (as `plan` does)."""
    thursday = the_thursday(thursday)
    week = week_key(thursday)
    issue = issue_for_week(session, week)
    if issue is not None:
        selection, number = recorded_selection(session, issue), issue.number
    else:
        start = min(upcoming_thursday(today), thursday)
        view = calendar(session, settings, start, (thursday - start).days // 7 + 1)
        planned = view.weeks[-1]
        selection, number = planned.selection, planned.number
        if selection.missing:
            raise QueueDryError(_dry_message(session, selection))
    chosen = issue.subject if issue is not None else chosen_subject(session, week)
    info = IssueInfo(number, week, thursday, issue_url(settings, week), chosen)
    return info, selection, render(info, selection, settings)


def _last_issue(session: Session) -> LastIssue | None:
    issue = session.exec(select(Issue).order_by(col(Issue.thursday).desc())).first()
    return LastIssue(issue.week_key, issue.number, issue.thursday) if issue else None


def _record(
    session: Session, settings: Settings, thursday: date, clock: Clock, force: bool
) -> tuple[Issue, RenderedIssue]:
    """Check the calendar, pick and number the week's issue: called under the numbering lock,
    so no other build of any week reads the queue or the last number meanwhile."""
    today = clock().astimezone(settings.tz).date()
    check_build_week(thursday, today, _last_issue(session), force=force)
    week = week_key(thursday)
    selection = pick(queued_items(session), thursday)
    if selection.missing:
        raise QueueDryError(_dry_message(session, selection))
    number = (_max_number(session) or settings.first_issue_number - 1) + 1
    info = IssueInfo(
        number, week, thursday, issue_url(settings, week), chosen_subject(session, week)
    )
    rendered = render(info, selection, settings)  # before writing: a template error stops here
    issue = Issue(
        week_key=week,
        number=number,
        thursday=thursday,
        subject=rendered.subject,
        news_id=selection["news"].id,
        example_id=selection["example"].id,
        tool_id=selection["tool"].id,
        built_at=clock(),
    )
    session.add(issue)
    session.flush()
    for kind in KINDS:
        item = selection[kind]
        item.status, item.issue_id, item.updated_at = "used", issue.id, issue.built_at
        session.add(item)
    session.commit()
    return issue, rendered


def render_recorded(session: Session, settings: Settings, issue: Issue) -> RenderedIssue:
    """Render an issue already built, from its recorded items (same bytes as its build)."""
    url = issue_url(settings, issue.week_key)
    info = IssueInfo(issue.number, issue.week_key, issue.thursday, url, issue.subject)
    return render(info, recorded_selection(session, issue), settings)


def build_issue(
    session: Session,
    settings: Settings,
    thursday: date,
    clock: Clock,
    progress=None,
    *,
    force: bool = False,
) -> BuildReport:
    """Pick, record, render and write the outbox for one week (the web copy goes public at
    the issue's send time, from the database).

    Idempotent: a week is picked once (one issue per ISO week in the database); a build that
    was interrupted is completed; a finished one is left alone. The calendar rules
    (timetable.check_build_week) apply to a week not built yet."""
    thursday = the_thursday(thursday)
    week = week_key(thursday)
    # One builder per week on every machine (advisory lock on PostgreSQL), and one numbering
    # at a time for all weeks: two weeks built at once never share an item or a number.
    with instance_lock(settings, f"build:{week}"):
        session.rollback()  # read what the previous holder committed
        issue, rendered = issue_for_week(session, week), None
        if issue is None:
            with instance_lock(settings, "issue-numbers"):
                session.rollback()
                issue, rendered = _record(session, settings, thursday, clock, force)
        return _complete(session, settings, issue, rendered, clock, progress)


def _active_readers(session: Session) -> int:
    query = select(func.count()).select_from(Subscriber).where(Subscriber.status == "active")
    return session.exec(query).one()


def _complete(
    session: Session,
    settings: Settings,
    issue: Issue,
    rendered: RenderedIssue | None,  # given when this build recorded the issue
    clock: Clock,
    progress,
) -> BuildReport:
    """Write the outbox of a recorded issue unless a previous build finished it."""
    created = rendered is not None
    url, public_at = (
        issue_url(settings, issue.week_key),
        public_from(settings, issue.thursday, issue.built_at),
    )
    readers = _active_readers(session)
    if issue.outbox_done_at is not None:
        return BuildReport(issue, False, True, url, public_at, readers=readers)
    rendered = rendered or render_recorded(session, settings, issue)
    report = write_issue_outbox(session, settings, issue, rendered, clock, progress=progress)
    issue.outbox_done_at = clock()
    session.add(issue)
    session.commit()
    return BuildReport(issue, created, False, url, public_at, report.written, readers)
