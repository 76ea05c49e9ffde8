"""The database edge of the feedback loop: one returning message in, its effects stored.

`take_in` is idempotent: a message already read (same bytes, or same Message-ID) changes
nothing. Each message is one transaction: the reader's new status, the French confirmation
of a mailto unsubscribe and the InboundMessage row commit together, or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import make_msgid

import sqlalchemy as sa
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.delivery.ledger import queue_single
from newsletter.delivery.message import compose_simple, sender_domain
from newsletter.models import Delivery, InboundMessage, Issue, Subscriber
from newsletter.returns.decide import Decision, consecutive, decide, identify
from newsletter.returns.parse import Unreadable, digest, message_id_of, read
from newsletter.subscribers import set_status
from newsletter.typography import typeset
from newsletter.weeks import Clock

STOPPED = ("unsubscribed", "bounced")  # statuses a returning message never changes back


@dataclass(frozen=True)
class Outcome:
    """What one message was and what it did: `changed` names the status a reader got."""

    message_id: str
    kind: str
    action: str
    detail: str
    email: str = ""
    changed: str = ""
    duplicate: bool = False


class SessionReaders:
    """The `Readers` that `identify` needs, read from the database."""

    def __init__(self, session: Session):
        self.session = session

    def by_id(self, subscriber_id: int) -> Subscriber | None:
        return self.session.get(Subscriber, subscriber_id) if subscriber_id < 2**62 else None

    def by_email(self, email: str) -> Subscriber | None:
        return self.session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def _seen(session: Session, key: str, message_id: str) -> InboundMessage | None:
    query = select(InboundMessage).where(InboundMessage.digest == key)
    found = session.exec(query).first()
    if found is None and message_id:
        query = select(InboundMessage).where(InboundMessage.message_id == message_id)
        found = session.exec(query).first()
    return found


def _decision(session: Session, settings: Settings, raw: bytes) -> Decision:
    try:
        returned = read(raw)
    except Unreadable as exc:
        return Decision("unreadable", "keep", None, None, exc.reason)
    except Exception as exc:  # whatever a broken message does to a parser, it is kept, not lost
        return Decision("unreadable", "keep", None, None, f"cannot be parsed ({exc!r})"[:500])
    secret, readers = instance_secret(settings), SessionReaders(session)
    return decide(returned, identify(returned, secret, readers, settings.bounce_address))


def take_in(
    session: Session, settings: Settings, clock: Clock, raw: bytes, source: str = "stdin"
) -> Outcome:
    """Read one returning message and act on it (once: a second reading changes nothing)."""
    key, message_id = digest(raw), message_id_of(raw)
    seen = _seen(session, key, message_id)
    if seen is not None:
        return Outcome(message_id, seen.kind, seen.action, seen.detail, duplicate=True)
    decision = _decision(session, settings, raw)
    reader = session.get(Subscriber, decision.subscriber_id) if decision.subscriber_id else None
    week = decision.week or (_latest_week(session, reader.id) if reader else None)
    row = InboundMessage(
        digest=key,
        message_id=message_id,
        received_at=clock(),
        kind=decision.kind,
        action=decision.action,
        subscriber_id=decision.subscriber_id,
        week_key=week,
        detail=decision.detail,
        source=source,
        raw=raw if decision.action == "keep" else None,
    )
    outcome = Outcome(message_id, decision.kind, decision.action, decision.detail)
    try:
        session.add(row)
        session.flush()  # the unique digest: a concurrent reader of the same message stops here
        changed = _act(session, settings, clock, decision, reader, week, key) if reader else ""
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        return replace(outcome, duplicate=True)
    return replace(outcome, email=reader.email if reader else "", changed=changed)


def _act(
    session: Session,
    settings: Settings,
    clock: Clock,
    decision: Decision,
    reader: Subscriber,
    week: str | None,
    key: str,
) -> str:
    """Apply the decision to the reader; the new status, or "" when nothing changed."""
    if decision.action == "count":
        limit = max(settings.soft_bounce_limit, 1)
        run = consecutive(_weeks_sent(session, reader.id), _soft_weeks(session, reader.id))
        if run < limit:
            return ""
        detail = f"soft bounces on {run} consecutive issues; last: {decision.detail}"
        return _change(session, reader, "bounced", clock(), detail)
    if decision.action == "bounce":
        return _change(session, reader, "bounced", clock(), decision.detail)
    if decision.action != "unsubscribe":
        return ""
    reason = decision.detail + (f" on {week}" if week and decision.kind == "complaint" else "")
    changed = _change(session, reader, "unsubscribed", clock(), reason)
    if changed and decision.kind == "unsubscribe":
        queue_goodbye(session, settings, clock, reader, key)
    return changed


def _change(session: Session, reader: Subscriber, status: str, now: datetime, reason: str) -> str:
    if reader.status in STOPPED:
        return ""
    set_status(reader, status, now, reason if status == "bounced" else None)
    reader.status_reason = reason
    session.add(reader)
    return status


def _weeks_sent(session: Session, subscriber_id: int) -> list[str]:
    """The weeks of the issues this reader was sent, newest first."""
    query = (
        select(Issue.week_key)
        .join(Delivery, Delivery.issue_id == Issue.id)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.purpose == "issue")
        .order_by(Issue.thursday.desc())
    )
    return list(session.exec(query))


def _latest_week(session: Session, subscriber_id: int) -> str | None:
    weeks = _weeks_sent(session, subscriber_id)
    return weeks[0] if weeks else None


def _soft_weeks(session: Session, subscriber_id: int) -> set[str]:
    query = select(InboundMessage.week_key).where(
        InboundMessage.subscriber_id == subscriber_id, InboundMessage.kind == "soft_bounce"
    )
    return {week for week in session.exec(query) if week}


GOODBYE_SUBJECT = "Votre désinscription des Jeudis de l’ODD\u00a017 est confirmée"
GOODBYE_TEXT = (
    "Bonjour,\n\n"
    "Votre demande a bien été prise en compte : vous ne recevrez plus\n"
    "«\u00a0Les Jeudis de l’ODD\u00a017\u00a0», le flash-info hebdomadaire du RAMEAU.\n\n"
    "S’il s’agit d’une erreur, vous pouvez vous réinscrire à tout moment :\n"
    "{base_url}\n\n"
    "L’équipe du RAMEAU\n"
)


def queue_goodbye(
    session: Session, settings: Settings, clock: Clock, reader: Subscriber, key: str
) -> Delivery:
    """Queue the short French confirmation of an unsubscribe request sent by mail."""
    message_id = make_msgid(idstring=f"goodbye.{key[:16]}", domain=sender_domain(settings))
    data = compose_simple(
        settings=settings,
        to_email=reader.email,
        to_name=reader.name,
        subject=typeset(GOODBYE_SUBJECT),
        text=typeset(GOODBYE_TEXT.format(base_url=settings.base_url.rstrip("/") + "/")),
        html_body=None,
        date=clock(),
        message_id=message_id,
        headers={"Auto-Submitted": "auto-replied"},
    )
    return queue_single(
        session, settings, "goodbye", reader.email, reader.id, data, message_id, clock=clock
    )
