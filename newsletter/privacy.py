"""Readers' data (RGPD): the record of consent, the right of access, the right to erasure.

- Consent: each subscriber row says how consent was given (the form, an invitation the
  person confirmed, an editor's import or `subscriber add`), the wording shown, and when.
- Access: `export_reader` gathers everything held about one address, as plain JSON values.
- Erasure: `forget_reader` deletes the subscriber row, blanks the personal fields of its
  deliveries (and removes their message files), and keeps only a SHA-256 of the address in
  the suppression list, so that no later import or `add` brings it back. Only the person's
  own sign-up through the form, once confirmed, lifts it. The hash is of the normalised
  address under a fixed prefix, not keyed by the instance secret: the list must survive a
  new secret, and it only has to answer "was this address forgotten?".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, or_, select

from newsletter.audit import as_dict, entries, record
from newsletter.config import Settings
from newsletter.models import Delivery, InboundMessage, Issue, Subscriber, Suppression
from newsletter.weeks import Clock

# The wording each way of subscribing showed (or stands for), stored with the consent.
CONSENT_TEXTS = {
    "form": (
        "Formulaire « S’inscrire aux Jeudis de l’ODD 17 », bouton « Recevoir les Jeudis » : "
        "« Nous vous enverrons un message pour confirmer votre adresse. Vous pourrez vous "
        "désinscrire à tout moment, en un clic, depuis chaque numéro. »"
    ),
    "invitation": (
        "Message « Confirmez votre inscription aux Jeudis de l’ODD 17 » envoyé par un "
        "éditeur, lien « Confirmer mon inscription »"
    ),
    "import": "Import d’une liste par un éditeur, qui atteste le consentement ({detail})",
    "cli": "Ajout par un éditeur (`jeudis subscriber add`), qui atteste le consentement",
}
FORGOTTEN = "(effacé)"


def stamp_consent(
    subscriber: Subscriber, source: str, at: datetime | None, detail: str = ""
) -> None:
    """Record how consent was given (`at` None: asked, not yet confirmed)."""
    subscriber.consent_source = source
    subscriber.consent_text = CONSENT_TEXTS[source].format(detail=detail)
    subscriber.consent_at = at


def address_hash(email: str) -> str:
    """The suppression list's key for an already normalised address."""
    return hashlib.sha256(f"jeudis-suppression:{email}".encode()).hexdigest()


def suppressed(session: Session, email: str) -> Suppression | None:
    """The suppression entry of a (normalised) address forgotten on request, if any."""
    return session.get(Suppression, address_hash(email))


def lift_suppression(session: Session, email: str) -> None:
    """The person signed up again and confirmed: their address may be kept again."""
    entry = suppressed(session, email)
    if entry is not None:
        session.delete(entry)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


SUBSCRIBER_FIELDS = (
    "id",
    "email",
    "name",
    "status",
    "created_at",
    "status_changed_at",
    "confirmed_at",
    "unsubscribed_at",
    "bounced_at",
    "last_error",
    "status_reason",
)
DELIVERY_FIELDS = ("purpose", "recipient", "message_id", "status", "attempts", "last_error")
DELIVERY_FIELDS += ("created_at", "sent_at")


def export_reader(session: Session, email: str) -> dict[str, Any]:
    """Everything held about one (normalised) address, as JSON-ready values."""
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    entry = suppressed(session, email)
    data: dict[str, Any] = {
        "email": email,
        "subscriber": None,
        "consent": None,
        "deliveries": [],
        "returns": [],
        "history": [],
        "forgotten_at": _plain(entry.created_at) if entry else None,
    }
    if subscriber is None:
        return data
    data["subscriber"] = {f: _plain(getattr(subscriber, f)) for f in SUBSCRIBER_FIELDS}
    data["consent"] = {
        "source": subscriber.consent_source,
        "wording": subscriber.consent_text,
        "at": _plain(subscriber.consent_at),
    }
    weeks = dict(session.exec(select(Issue.id, Issue.week_key)).all())
    rows = _deliveries(session, subscriber.id, email)
    data["deliveries"] = [
        {"issue": weeks.get(d.issue_id), **{f: _plain(getattr(d, f)) for f in DELIVERY_FIELDS}}
        for d in rows
    ]
    data["returns"] = [  # bounces, complaints, unsubscribe mails about the reader
        {"kind": r.kind, "issue": r.week_key, "at": _plain(r.received_at), "detail": r.detail}
        for r in session.exec(
            select(InboundMessage).where(InboundMessage.subscriber_id == subscriber.id)
        )
    ]
    history = entries(session, target=f"subscriber:{subscriber.id}", limit=10_000)
    data["history"] = [as_dict(e) for e in reversed(history)]
    return data


@dataclass(frozen=True)
class Forgotten:
    email: str
    held: bool  # False: nothing was held (the address is suppressed all the same)
    deliveries: int  # deliveries whose personal fields were blanked
    already: bool  # it had been forgotten before


def forget_reader(
    session: Session, settings: Settings, clock: Clock, actor: str, email: str
) -> Forgotten:
    """Erase one (normalised) address; idempotent. Commits, and logs without the address."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:  # deleted rows are zeroed, not left in free pages for anyone to read
        session.exec(text("PRAGMA secure_delete = ON"))
    already = suppressed(session, email) is not None
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    blanked, target = 0, "subscriber:unknown"
    if subscriber is not None:
        target = f"subscriber:{subscriber.id}"
        blanked = _blank_deliveries(session, settings, subscriber.id, email)
        _blank_returns(session, subscriber.id, email)
        session.delete(subscriber)
    if not already:
        session.add(Suppression(email_hash=address_hash(email), created_at=clock()))
    if subscriber is not None or not already:
        record(session, actor, "subscriber.forget", target, f"{blanked} deliveries", clock=clock)
    session.commit()
    if sqlite:  # and the old pages leave the write-ahead log
        session.exec(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        session.commit()
    return Forgotten(email, subscriber is not None, blanked, already and subscriber is None)


def _deliveries(session: Session, subscriber_id: int | None, email: str) -> list[Delivery]:
    """The reader's deliveries, and any other message to the address (a test send)."""
    query = select(Delivery).where(
        or_(Delivery.subscriber_id == subscriber_id, Delivery.recipient == email)
    )
    return list(session.exec(query.order_by(Delivery.id)))


def _blank_returns(session: Session, subscriber_id: int, email: str) -> int:
    """Detach what came back about the reader (and any kept message naming the address):
    the kind and the week stay for the figures; the bytes and the diagnostic go."""
    needle = email.lower().encode()
    query = select(InboundMessage).where(
        or_(InboundMessage.subscriber_id == subscriber_id, InboundMessage.raw.is_not(None))
    )
    count = 0
    for row in session.exec(query):
        if row.subscriber_id != subscriber_id and needle not in (row.raw or b"").lower():
            continue
        row.subscriber_id, row.raw, row.detail = None, None, FORGOTTEN
        session.add(row)
        count += 1
    session.flush()
    return count


def _blank_deliveries(
    session: Session, settings: Settings, subscriber_id: int | None, email: str
) -> int:
    """Detach the deliveries from the reader, blank the address, remove the message files;
    a message still queued is skipped rather than sent to nobody."""
    rows = _deliveries(session, subscriber_id, email)
    for delivery in rows:
        if delivery.path:
            (settings.home / delivery.path).unlink(missing_ok=True)
        delivery.subscriber_id = None
        delivery.recipient = FORGOTTEN
        delivery.content = None  # a one-off message stored whole names the reader
        if delivery.status in ("queued", "deferred"):
            delivery.status, delivery.last_error = "skipped", "reader forgotten on request"
        session.add(delivery)
    session.flush()
    return len(rows)
