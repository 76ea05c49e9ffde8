"""What the operator sees: per-issue delivery figures and the messages kept for a person.

Rates are over the messages sent. The warnings use the thresholds mailbox providers publish
for bulk senders: complaints above 0.1 %, bounces above 2 %.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from newsletter.models import Delivery, InboundMessage, Issue, Subscriber

COMPLAINT_LIMIT = 0.001
BOUNCE_LIMIT = 0.02
SENT_STATUSES = ("sent",)
REFUSED_STATUSES = ("failed", "bounced")  # refused by the relay while sending


@dataclass(frozen=True)
class IssueStats:
    """One issue's figures; rates are fractions of `sent`."""

    week: str
    number: int
    recipients: int
    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int

    def rate(self, count: int) -> float:
        return count / self.sent if self.sent else 0.0

    @property
    def bounce_rate(self) -> float:
        return self.rate(self.hard_bounces + self.soft_bounces)

    @property
    def complaint_rate(self) -> float:
        return self.rate(self.complaints)

    def warnings(self) -> list[str]:
        found = []
        if self.complaint_rate > COMPLAINT_LIMIT:
            found.append(
                f"{self.week}: complaint rate {self.complaint_rate:.2%} is above 0.1 %: "
                "mailbox providers start filtering the list"
            )
        if self.bounce_rate > BOUNCE_LIMIT:
            found.append(
                f"{self.week}: bounce rate {self.bounce_rate:.2%} is above 2 %: "
                "clean the list (jeudis subscriber list --status bounced)"
            )
        return found

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(bounce_rate=self.bounce_rate, complaint_rate=self.complaint_rate)
        data["warnings"] = self.warnings()
        return data


def _issue_ids(session: Session, issue: Issue) -> list[int]:
    query = select(Delivery.subscriber_id).where(
        Delivery.issue_id == issue.id, Delivery.purpose == "issue"
    )
    return [sid for sid in session.exec(query) if sid is not None]


def _count_deliveries(session: Session, issue: Issue, statuses: tuple[str, ...]) -> set[int]:
    query = select(Delivery.subscriber_id).where(
        Delivery.issue_id == issue.id,
        Delivery.purpose == "issue",
        col(Delivery.status).in_(statuses),
    )
    return {sid for sid in session.exec(query) if sid is not None}


def _returned(session: Session, week: str, kind: str) -> set[int]:
    query = select(InboundMessage.subscriber_id).where(
        InboundMessage.week_key == week, InboundMessage.kind == kind
    )
    return {sid for sid in session.exec(query) if sid is not None}


def _window(issue: Issue, following: Issue | None) -> tuple[datetime, datetime | None]:
    """Unsubscribes between this issue's sending and the next one's count for this issue."""
    start = issue.sent_at or issue.built_at
    end = (following.sent_at or following.built_at) if following else None
    return start, end


def _unsubscribes(session: Session, issue: Issue, following: Issue | None, ids: list[int]) -> int:
    start, end = _window(issue, following)
    query = select(sa.func.count()).where(
        col(Subscriber.id).in_(ids),
        Subscriber.status == "unsubscribed",
        col(Subscriber.unsubscribed_at) >= start,
    )
    if end is not None:
        query = query.where(col(Subscriber.unsubscribed_at) < end)
    return session.exec(query).one() if ids else 0


def issue_stats(session: Session, week: str | None = None) -> list[IssueStats]:
    """The figures of every issue (oldest first), or of one week's issue."""
    issues = list(session.exec(select(Issue).order_by(Issue.thursday)))
    result = []
    for index, issue in enumerate(issues):
        if week and issue.week_key != week:
            continue
        following = issues[index + 1] if index + 1 < len(issues) else None
        ids = _issue_ids(session, issue)
        hard = _returned(session, issue.week_key, "hard_bounce")
        hard |= _count_deliveries(session, issue, REFUSED_STATUSES)
        soft = _returned(session, issue.week_key, "soft_bounce") - hard
        result.append(
            IssueStats(
                week=issue.week_key,
                number=issue.number,
                recipients=len(ids),
                sent=len(_count_deliveries(session, issue, SENT_STATUSES)),
                hard_bounces=len(hard),
                soft_bounces=len(soft),
                complaints=len(_returned(session, issue.week_key, "complaint")),
                unsubscribes=_unsubscribes(session, issue, following, ids),
            )
        )
    return result


@dataclass(frozen=True)
class InboundReport:
    """All returning mail read so far: counts by kind and action, and the kept messages."""

    kinds: dict[str, int]
    actions: dict[str, int]
    kept: list[InboundMessage]


def inbound_report(session: Session) -> InboundReport:
    rows = list(session.exec(select(InboundMessage.kind, InboundMessage.action)))
    kept_query = (
        select(InboundMessage)
        .where(InboundMessage.action == "keep")
        .order_by(InboundMessage.received_at, InboundMessage.id)
    )
    return InboundReport(
        kinds=dict(Counter(kind for kind, _ in rows)),
        actions=dict(Counter(action for _, action in rows)),
        kept=list(session.exec(kept_query)),
    )
