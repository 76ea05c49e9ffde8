"""Subscribers: add, remove, list, import a CSV, double opt-in (invite, confirm), unsubscribe.

Service functions shared by the CLI, the web pages and the scheduler. Each takes a Session
and a clock; each status change stamps `status_changed_at` and the matching dated field.
Addresses are stored normalised: validated by email-validator, then lower-cased.
Someone who unsubscribed or bounced is never re-activated by an import or an `add`
unless the caller says `reactivate=True`; only the person's own confirmation (a signed
link) re-activates them otherwise.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import make_msgid
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from newsletter import tokens
from newsletter.audit import record
from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.delivery.ledger import queue_single
from newsletter.delivery.message import compose_simple, sender_domain
from newsletter.delivery.message import unsubscribe_url as message_unsubscribe_url
from newsletter.errors import ConflictError, InputError, NotFoundError
from newsletter.models import SUBSCRIBER_STATUSES, Delivery, Subscriber
from newsletter.privacy import lift_suppression, stamp_consent, suppressed
from newsletter.typography import typeset
from newsletter.weeks import Clock

EMAIL_HEADERS = {
    "email",
    "e-mail",
    "courriel",
    "adresse",
    "mail",
    "adresse email",
    "adresse e-mail",
    "adresse mail",
    "adresse courriel",
    "email address",
}
NAME_HEADERS = {"name", "nom", "prenom nom", "nom complet", "full name"}
FIRST_NAME_HEADERS = {"prenom", "first name"}


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


@dataclass(frozen=True)
class BadRow:
    line: int
    address: str
    reason: str

    def describe(self, path: Path | str) -> str:
        if not self.address:
            return f"{path}:{self.line}: email: missing"
        return f"{path}:{self.line}: email: {self.address!r} is not a valid address ({self.reason})"


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


def _fold(header: str) -> str:
    """A header compared without case, accents, underscores or extra spaces."""
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return " ".join(text.lower().replace("_", " ").split())


def _read_rows(path: Path) -> tuple[list[tuple[int, str, str]], str]:
    """(line, address, name) rows of a CSV file; InputError for a file that cannot be read."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
            "save the file as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise InputError(f"{path}: empty file (expected a header row with an email column)")
    header_line = text.lstrip("\r\n").splitlines()[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [_fold(cell) for cell in next(reader)]
        while not any(header):
            header = [_fold(cell) for cell in next(reader)]
    except StopIteration:
        raise InputError(f"{path}: empty file (expected a header row)") from None
    email_col = next((i for i, h in enumerate(header) if h in EMAIL_HEADERS), None)
    if email_col is None:
        raise InputError(
            f"{path}:{reader.line_num}: no address column (expected one named "
            "email, e-mail, courriel, adresse or mail)"
        )
    name_col = next((i for i, h in enumerate(header) if h in NAME_HEADERS), None)
    first_col = next((i for i, h in enumerate(header) if h in FIRST_NAME_HEADERS), None)
    rows = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue

            def cell(i: int | None, cells=cells) -> str:
                return cells[i].strip() if i is not None and i < len(cells) else ""

            name = " ".join(part for part in (cell(first_col), cell(name_col)) if part)
            rows.append((reader.line_num, cell(email_col), name))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    return rows, delimiter


def import_csv(
    session: Session, clock: Clock, path: Path, *, reactivate: bool = False
) -> ImportReport:
    """Merge a CSV of addresses into the subscribers; bad rows are reported, good ones kept.

    The whole file is read and checked before anything is written, and written in one
    transaction: a file that cannot be read leaves the database as it was.
    """
    rows, _ = _read_rows(Path(path))
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


def confirm_url(settings: Settings, subscriber: Subscriber) -> str:
    """The personal link that confirms a sign-up."""
    token = tokens.sign(instance_secret(settings), "confirm", subscriber.id, subscriber.email)
    return f"{settings.base_url.rstrip('/')}/confirm/{token}"


def unsubscribe_url(settings: Settings, subscriber: Subscriber) -> str:
    """The personal one-click unsubscribe link (also the List-Unsubscribe HTTPS URL)."""
    token = tokens.sign(instance_secret(settings), "unsubscribe", subscriber.id, subscriber.email)
    return message_unsubscribe_url(settings, token)


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
    """Delete sign-ups left unconfirmed for `signup_pending_days` (and their confirmations).

    Does not commit. Returns how many sign-ups were deleted.
    """
    cutoff = now - timedelta(days=settings.signup_pending_days)
    stale = select(Subscriber.id).where(
        Subscriber.status == "pending", Subscriber.created_at < cutoff
    )
    ids = list(session.exec(stale))
    if ids:
        session.exec(delete(Delivery).where(col(Delivery.subscriber_id).in_(ids)))
        session.exec(delete(Subscriber).where(col(Subscriber.id).in_(ids)))
    return len(ids)


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
