"""Subscribers: add, remove, list, import a CSV, confirm and unsubscribe by signed link.

The sign-up itself (invite, its limits, the confirmation message) is in `signup`.

Service functions shared by the CLI, the web pages and the scheduler. Each takes a Session
and a clock; each status change stamps `status_changed_at` and the matching dated field.
Addresses are stored normalised: validated by email-validator, then lower-cased.
Someone who unsubscribed or bounced is never re-activated by an import or an `add`
unless the caller says `reactivate=True`; only the person's own confirmation (a signed
link) re-activates them otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, select

from newsletter import tokens
from newsletter.audit import record
from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.delivery.message import unsubscribe_url as message_unsubscribe_url
from newsletter.errors import ConflictError, InputError, NotFoundError
from newsletter.models import SUBSCRIBER_STATUSES, Subscriber
from newsletter.privacy import lift_suppression, stamp_consent, suppressed
from newsletter.readers_csv import BadRow, read_rows
from newsletter.weeks import Clock


class InvalidAddress(InputError):
    """An address email-validator refuses; `reason` says why, in its words."""

    def __init__(self, address: str, reason: str):
        self.address, self.reason = address, reason
        super().__init__(f"email: {address!r} is not a valid address ({reason})")


def normalise_email(address: str) -> str:
    """The stored form of an address (ASCII, lower case), or InvalidAddress."""
    text = address.strip()
    if not text:
        raise InvalidAddress(address, "empty")
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(text, str(exc).rstrip(".")) from None
    return (result.ascii_email or result.normalized).lower()


def find(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this (already normalised) address, if any."""
    return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def set_status(subscriber: Subscriber, status: str, now: datetime, error: str | None = None):
    """Change a subscriber's status and stamp the dated fields that go with it."""
    if status not in SUBSCRIBER_STATUSES:
        raise ValueError(status)
    subscriber.status = status
    subscriber.status_changed_at = now
    if status == "active":
        subscriber.last_error = None
    elif status == "unsubscribed":
        subscriber.unsubscribed_at = now
    elif status == "bounced":
        subscriber.bounced_at = now
        subscriber.last_error = error


# ---------------------------------------------------------------- add, remove, list


@dataclass(frozen=True)
class Change:
    """What happened to one address: added, updated, unchanged, or skipped (with its status)."""

    outcome: str
    subscriber: Subscriber


def _upsert(
    session: Session,
    email: str,
    name: str,
    now: datetime,
    reactivate: bool,
    consent: tuple[str, str] = ("cli", ""),
) -> Change:
    """Make `email` an active subscriber, without committing. `consent` is (how, detail)
    for the record of consent of a new or reactivated subscriber."""
    subscriber = find(session, email)
    if suppressed(session, email) is not None:
        # Forgotten on request: only the person's own confirmed sign-up lifts it (confirm).
        return Change(
            "skipped-forgotten", subscriber or Subscriber(email=email, status="forgotten")
        )
    if subscriber is None:
        subscriber = Subscriber(
            email=email, name=name, status="active", created_at=now, status_changed_at=now
        )
        stamp_consent(subscriber, consent[0], now, consent[1])
        session.add(subscriber)
        return Change("added", subscriber)
    if subscriber.status in ("unsubscribed", "bounced") and not reactivate:
        return Change(f"skipped-{subscriber.status}", subscriber)
    if subscriber.status != "active":
        stamp_consent(subscriber, consent[0], now, consent[1])
    changed = False
    if name and name != subscriber.name:
        subscriber.name, changed = name, True
    if subscriber.status != "active":
        set_status(subscriber, "active", now)
        changed = True
    if changed:
        session.add(subscriber)
    return Change("updated" if changed else "unchanged", subscriber)


def add(
    session: Session, clock: Clock, email: str, name: str = "", *, reactivate: bool = False
) -> Change:
    """Subscribe an address now (no confirmation: the editor vouches for consent)."""
    address = normalise_email(email)
    change = _upsert(session, address, name.strip(), clock(), reactivate)
    if change.outcome == "skipped-forgotten":
        raise ConflictError(
            f"email: {address} was forgotten at the reader's request; only their own "
            "sign-up through the form can add it again"
        )
    if change.outcome.startswith("skipped"):
        raise ConflictError(
            f"email: {address} is {change.subscriber.status}; "
            "pass --reactivate to subscribe it again"
        )
    session.commit()
    return change


def remove(session: Session, clock: Clock, email: str) -> Subscriber:
    """Mark an address unsubscribed (the row and its history stay)."""
    address = normalise_email(email)
    subscriber = find(session, address)
    if subscriber is None:
        raise NotFoundError(f"email: {address} is not a subscriber")
    if subscriber.status != "unsubscribed":
        set_status(subscriber, "unsubscribed", clock())
        session.add(subscriber)
        session.commit()
    return subscriber


def list_subscribers(session: Session, status: str | None = None) -> list[Subscriber]:
    """Subscribers by address, optionally only those with one status."""
    query = select(Subscriber).order_by(Subscriber.email)
    if status:
        if status not in SUBSCRIBER_STATUSES:
            raise InputError(f"status: {status!r} is not one of {', '.join(SUBSCRIBER_STATUSES)}")
        query = query.where(Subscriber.status == status)
    return list(session.exec(query))


# ---------------------------------------------------------------- CSV import


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_unsubscribed: int = 0
    skipped_bounced: int = 0
    skipped_forgotten: int = 0  # erased on request (`subscriber forget`)
    duplicates: int = 0  # rows merged into an earlier row of the same file
    bad_rows: list[BadRow] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        attr = outcome.replace("-", "_")
        setattr(self, attr, getattr(self, attr) + 1)


def import_csv(
    session: Session, clock: Clock, path: Path, *, reactivate: bool = False
) -> ImportReport:
    """Merge a CSV of addresses into the subscribers; bad rows are reported, good ones kept.

    The whole file is read and checked before anything is written, and written in one
    transaction: a file that cannot be read leaves the database as it was.
    """
    rows, _ = read_rows(Path(path))
    report = ImportReport()
    merged: dict[str, str] = {}
    for line, address, name in rows:
        try:
            email = normalise_email(address)
        except InvalidAddress as exc:
            report.bad_rows.append(BadRow(line, address, exc.reason))
            continue
        if email in merged:
            report.duplicates += 1
            merged[email] = merged[email] or name
        else:
            merged[email] = name
    now = clock()
    try:
        for email, name in merged.items():
            change = _upsert(session, email, name, now, reactivate, ("import", Path(path).name))
            report.count(change.outcome)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return report


# ---------------------------------------------------------------- double opt-in


def unsubscribe_url(settings: Settings, subscriber: Subscriber) -> str:
    """The personal one-click unsubscribe link (also the List-Unsubscribe HTTPS URL)."""
    token = tokens.sign(instance_secret(settings), "unsubscribe", subscriber.id, subscriber.email)
    return message_unsubscribe_url(settings, token)


def _by_token(session: Session, settings: Settings, purpose: str, token: str) -> Subscriber:
    """The subscriber a signed token names; BadToken for a forged, foreign or stale one."""
    subscriber_id = tokens.subscriber_id_of(token)
    subscriber = session.get(Subscriber, subscriber_id) if subscriber_id < 2**62 else None
    if subscriber is None:
        raise tokens.BadToken("token: signature does not match")
    tokens.verify(instance_secret(settings), purpose, token, subscriber.email)
    return subscriber


def peek(session: Session, settings: Settings, purpose: str, token: str) -> Subscriber:
    """Check a token without changing anything (for the pages shown on GET)."""
    return _by_token(session, settings, purpose, token)


def confirm(session: Session, settings: Settings, clock: Clock, token: str) -> Subscriber:
    """Activate the subscriber a confirm token names (idempotent); a sign-up left
    unconfirmed past `signup_pending_days` has expired (BadToken)."""
    subscriber = _by_token(session, settings, "confirm", token)
    if subscriber.status != "active":
        now = clock()
        if subscriber.status == "pending" and subscriber.created_at < now - timedelta(
            days=settings.signup_pending_days
        ):
            raise tokens.BadToken("token: sign-up expired")
        set_status(subscriber, "active", now)
        subscriber.confirmed_at = now
        if subscriber.consent_source in ("form", "invitation"):
            subscriber.consent_at = now
        lift_suppression(session, subscriber.email)
        session.add(subscriber)
        record(session, "reader", "subscriber.confirm", f"subscriber:{subscriber.id}", clock=clock)
    return subscriber


def unsubscribe(session: Session, settings: Settings, clock: Clock, token: str) -> Subscriber:
    """Unsubscribe the subscriber an unsubscribe token names (idempotent)."""
    subscriber = _by_token(session, settings, "unsubscribe", token)
    if subscriber.status != "unsubscribed":
        set_status(subscriber, "unsubscribed", clock())
        session.add(subscriber)
        record(
            session, "reader", "subscriber.unsubscribe", f"subscriber:{subscriber.id}", clock=clock
        )
    return subscriber
