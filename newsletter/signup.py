"""Sign-up by double opt-in: a pending subscriber and one confirmation message.

`invite` is the one way in for the form, `jeudis subscriber invite` and the desk. It holds
an address to one confirmation per `signup_confirm_interval_hours`, claimed atomically so
that concurrent sign-ups queue one message (a sign-up form must not be a way to mail-bomb
someone), and deletes sign-ups left unconfirmed for `signup_pending_days`. The person's
confirmation itself is `subscribers.confirm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from newsletter import tokens
from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.delivery.ledger import queue_single
from newsletter.delivery.message import compose_simple, sender_domain
from newsletter.errors import ConflictError
from newsletter.models import Delivery, InboundMessage, Subscriber
from newsletter.privacy import stamp_consent, suppressed
from newsletter.subscribers import find, normalise_email
from newsletter.typography import typeset
from newsletter.weeks import Clock


def confirm_url(settings: Settings, subscriber: Subscriber) -> str:
    """The personal link that confirms a sign-up."""
    token = tokens.sign(instance_secret(settings), "confirm", subscriber.id, subscriber.email)
    return f"{settings.base_url.rstrip('/')}/confirm/{token}"


def confirmation_message(
    settings: Settings, subscriber: Subscriber, link: str, now: datetime
) -> tuple[bytes, str]:
    """The French « confirmez votre inscription » message and its Message-ID."""
    message_id = make_msgid(idstring="confirm", domain=sender_domain(settings))
    hello = f"Bonjour {subscriber.name}," if subscriber.name else "Bonjour,"
    text = (
        f"{hello}\n\n"
        "Vous avez demandé à recevoir « Les Jeudis de l'ODD 17 », le flash-info\n"
        "hebdomadaire du RAMEAU sur les alliances entre associations, entreprises\n"
        "et collectivités.\n\n"
        "Pour confirmer votre inscription, ouvrez ce lien puis cliquez sur\n"
        "« Confirmer mon inscription » :\n\n"
        f"{link}\n\n"
        "Si vous n'êtes pas à l'origine de cette demande, ignorez simplement ce\n"
        "message : vous ne recevrez rien d'autre.\n\n"
        "L'équipe du RAMEAU\n"
    )
    data = compose_simple(
        settings=settings,
        to_email=subscriber.email,
        to_name=subscriber.name,
        # French spacing keeps « : » and « » » on their lines; the link is left as is.
        subject=typeset("Confirmez votre inscription aux Jeudis de l'ODD 17"),
        text=typeset(text),
        html_body=None,
        date=now,
        message_id=message_id,
        headers={"Auto-Submitted": "auto-generated"},
    )
    return data, message_id


@dataclass(frozen=True)
class Invitation:
    subscriber: Subscriber
    delivery: Delivery | None  # None when nothing was queued: see `held`
    held: str = ""  # why nothing was queued: "active", "waiting" (in the outbox), "recent"


def invite(
    session: Session,
    settings: Settings,
    clock: Clock,
    email: str,
    name: str = "",
    how: str = "invitation",
) -> Invitation:
    """Double opt-in: a pending subscriber and a confirmation message in the outbox.

    An active subscriber gets nothing; a confirmation still waiting in the outbox is not
    queued twice, and an address gets at most one per `signup_confirm_interval_hours` (a
    sign-up form must not be a way to mail-bomb someone). Someone unsubscribed or bounced
    keeps that status until they confirm. Unconfirmed sign-ups past their time are purged.
    `how` is "form" for the person's own sign-up, "invitation" for an editor's: an address
    forgotten on request can only come back through the form.
    """
    address = normalise_email(email)
    if how != "form" and suppressed(session, address) is not None:
        raise ConflictError(
            f"email: {address} was forgotten at the reader's request; only their own "
            "sign-up through the form can add it again"
        )
    now = clock()
    purge_expired(session, settings, now)
    subscriber = find(session, address) or _new_pending(session, address, name, now)
    if subscriber.status == "active":
        session.commit()
        return Invitation(subscriber, None, "active")
    stamp_consent(subscriber, how, None)  # given when the person confirms
    session.add(subscriber)
    held = _held(session, settings, subscriber, now)
    if held:
        session.commit()
        return Invitation(subscriber, None, held)
    data, message_id = confirmation_message(
        settings, subscriber, confirm_url(settings, subscriber), now
    )
    delivery = queue_single(
        session, settings, "confirm", address, subscriber.id, data, message_id, clock=clock
    )
    return Invitation(subscriber, delivery)


def _new_pending(session: Session, address: str, name: str, now: datetime) -> Subscriber:
    """A new pending subscriber; if a concurrent sign-up created it first, that one."""
    subscriber = Subscriber(
        email=address, name=name.strip(), status="pending", created_at=now, status_changed_at=now
    )
    session.add(subscriber)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return find(session, address)
    return subscriber


def _held(session: Session, settings: Settings, subscriber: Subscriber, now: datetime) -> str:
    """Why no confirmation may be queued now ("" if one may: then this call has claimed the
    address's slot for the interval, atomically, so two concurrent sign-ups queue one)."""
    waiting = session.exec(
        select(Delivery.id).where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.purpose == "confirm",
            Delivery.status == "queued",
        )
    ).first()
    if waiting is not None:
        return "waiting"
    cutoff = now - timedelta(hours=settings.signup_confirm_interval_hours)
    claim = (
        update(Subscriber)
        .where(
            col(Subscriber.id) == subscriber.id,
            or_(
                col(Subscriber.confirm_sent_at).is_(None), col(Subscriber.confirm_sent_at) <= cutoff
            ),
        )
        .values(confirm_sent_at=now)
    )
    return "" if session.exec(claim).rowcount == 1 else "recent"


def purge_expired(session: Session, settings: Settings, now: datetime) -> int:
    """Delete sign-ups left unconfirmed for `signup_pending_days`, their confirmations, and
    the personal part of what came back about them.

    Does not commit. Returns how many sign-ups were deleted.
    """
    cutoff = now - timedelta(days=settings.signup_pending_days)
    stale = select(Subscriber.id).where(
        Subscriber.status == "pending", Subscriber.created_at < cutoff
    )
    ids = list(session.exec(stale))
    if ids:
        # What came back about them (a bounced confirmation) stays counted, detached.
        returns = col(InboundMessage.subscriber_id).in_(ids)
        session.exec(
            update(InboundMessage).where(returns).values(subscriber_id=None, raw=None, detail="")
        )
        session.exec(delete(Delivery).where(col(Delivery.subscriber_id).in_(ids)))
        session.exec(delete(Subscriber).where(col(Subscriber.id).in_(ids)))
    return len(ids)
