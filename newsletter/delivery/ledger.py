"""The outbox as a ledger in the database: each issue's message once, one row per recipient.

CONTRACT (the build relies on it):
    write_issue_outbox(session, settings, issue: Issue, rendered: RenderedIssue, clock,
                       progress=None) -> OutboxReport(written, existing, skipped)
Idempotent: the issue's message is stored once (`issue_message`), and a (issue, subscriber)
pair that already has a Delivery row gets no second one, even from two builders at once
(INSERT ... ON CONFLICT DO NOTHING on the unique keys). Nothing is written to files: the
sender makes each recipient's bytes when the message leaves (delivery/send.py), and
`jeudis outbox export` writes .eml files for whoever wants them (delivery/export.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.delivery.message import (
    compose,
    dump_template,
    feedback_id,
    message_id_for,
    sender_domain,
)
from newsletter.models import Delivery, Issue, IssueMessage, Subscriber
from newsletter.render import RenderedIssue
from newsletter.weeks import Clock, system_clock

BATCH = 1000
PURPOSE_ISSUE = "issue"
SINGLE_PURPOSES = ("confirm", "test", "goodbye")  # goodbye: a mailto unsubscribe confirmed
WAITING = ("queued", "deferred")
_DATE_LINE = re.compile(rb"^Date:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*", re.IGNORECASE | re.M)


@dataclass(frozen=True)
class OutboxReport:
    """What one run did: rows added now, rows already there, subscribers not active."""

    written: int
    existing: int
    skipped: int


def send_at(settings: Settings, issue: Issue) -> datetime:
    """When the issue leaves: its Thursday's `send_time`, or its build time if built late."""
    hour, minute = (int(part) for part in settings.send_time.split(":"))
    scheduled = datetime.combine(issue.thursday, time(hour, minute), tzinfo=settings.tz)
    return max(scheduled, issue.built_at).astimezone(settings.tz)


def insert_ignoring_duplicates(session: Session, table: sa.Table) -> sa.Insert:
    """INSERT ... ON CONFLICT DO NOTHING for the session's engine (SQLite or PostgreSQL)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def write_issue_outbox(
    session: Session,
    settings: Settings,
    issue: Issue,
    rendered: RenderedIssue,
    clock: Clock,
    progress: Callable[[int], None] | None = None,
) -> OutboxReport:
    """Store the issue's message once and one queued Delivery per active subscriber who has
    none for this issue; `progress(n_done)` after each committed batch."""
    template = compose(rendered, settings=settings, issue_week=issue.week_key)
    row = {
        "issue_id": issue.id,
        "template": dump_template(template),
        "send_at": send_at(settings, issue),
        "created_at": clock(),
    }
    session.execute(insert_ignoring_duplicates(session, IssueMessage.__table__), [row])
    session.commit()
    existing, skipped = _counts(session, issue.id)
    written = add_recipients(session, settings, issue, clock, progress)
    return OutboxReport(written, existing, skipped)


def add_recipients(
    session: Session,
    settings: Settings,
    issue: Issue,
    clock: Clock,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Queue the issue for every active subscriber without a row for it, BATCH at a time
    (keyset pagination: memory does not grow with the list); `progress(n)` after each batch
    handed to the database. Returns the rows added."""
    row = partial(_issue_row, issue, sender_domain(settings), instance_secret(settings), clock())
    postgres = session.get_bind().dialect.name == "postgresql"
    # A first build skips the "has no row yet" test: ON CONFLICT covers a second builder, and
    # PostgreSQL planned that anti-join badly against a table growing under it (4.8x slower).
    fresh = not session.scalar(sa.select(sa.exists().where(Delivery.issue_id == issue.id)))
    copy = fresh and postgres
    written, last_id = 0, 0
    while chunk := session.execute(
        _pending(issue.id, last_id, COPY_ROWS if copy else BATCH, check=not fresh)
    ).all():
        # COPY makes each row as it goes, so the server stores a row while the next is made.
        rows = (row(subscriber_id, email) for subscriber_id, email in chunk)
        if copy and _copied(session, rows, written, progress):
            written += len(chunk)
        else:
            copy = False  # another writer is adding rows for this issue: skip duplicates
            rows = [row(subscriber_id, email) for subscriber_id, email in chunk]
            for start in range(0, len(rows), BATCH):
                part = rows[start : start + BATCH]
                written += (_insert_pg if postgres else _insert_rows)(session, part)
                session.commit()
                if progress is not None:
                    progress(written)
        session.commit()
        last_id = chunk[-1][0]
    return written


def top_up(session: Session, settings: Settings, clock: Clock) -> int:
    """Queue the issues still being sent for subscribers who joined since their build.

    "Still being sent": some rows wait for a sender and the issue is within max_defer of its
    send time. An issue whose every row is settled is finished: a newcomer waits for the next.
    """
    now = clock()
    cutoff = now - timedelta(hours=settings.max_defer)
    waiting = sa.exists().where(
        Delivery.issue_id == IssueMessage.issue_id,
        Delivery.purpose == PURPOSE_ISSUE,
        Delivery.status.in_(WAITING),
    )
    issues = session.exec(
        select(Issue)
        .join(IssueMessage, IssueMessage.issue_id == Issue.id)
        .where(IssueMessage.send_at > cutoff, waiting)
    ).all()
    return sum(add_recipients(session, settings, issue, clock) for issue in issues)


def _issue_row(
    issue: Issue, domain: str, secret: bytes, now: datetime, subscriber_id: int, email: str
) -> dict:
    return {
        "issue_id": issue.id,
        "subscriber_id": subscriber_id,
        "purpose": PURPOSE_ISSUE,
        "recipient": email,
        "message_id": message_id_for(issue.week_key, subscriber_id, domain, secret=secret),
        "status": "queued",
        "attempts": 0,
        "created_at": now,
    }


def _insert_rows(session: Session, rows: list[dict]) -> int:
    """The batch as one executemany, skipping rows already there; the rows added."""
    result = session.execute(insert_ignoring_duplicates(session, Delivery.__table__), rows)
    return result.rowcount if result.rowcount >= 0 else len(rows)


# PostgreSQL, when other rows for the issue may exist: the whole batch as three arrays in
# one statement. An executemany sends one INSERT per row (pipelined), which made the build
# 2.6 times slower than on SQLite.
_PG_INSERT = """
INSERT INTO delivery (issue_id, subscriber_id, purpose, recipient, message_id, status,
                      attempts, created_at)
SELECT %(issue_id)s, t.subscriber_id, 'issue', t.recipient, t.message_id, 'queued', 0,
       %(created_at)s
  FROM unnest(%(subscriber_ids)s::integer[], %(recipients)s::text[], %(message_ids)s::text[])
       AS t(subscriber_id, recipient, message_id)
ON CONFLICT DO NOTHING
"""


def _insert_pg(session: Session, rows: list[dict]) -> int:
    params = {
        "issue_id": rows[0]["issue_id"],
        "created_at": _as_stored(rows[0]["created_at"]),
        "subscriber_ids": [row["subscriber_id"] for row in rows],
        "recipients": [row["recipient"] for row in rows],
        "message_ids": [row["message_id"] for row in rows],
    }
    return _unhurried(session).exec_driver_sql(_PG_INSERT, params).rowcount


# PostgreSQL, a first build: COPY_ROWS rows as one stream, which the server writes while the
# next rows are being made (about twice as fast as the arrays, one batch at a time). COPY
# cannot skip duplicates, so it runs in a savepoint: if another writer (a second builder, a
# sender's top-up) added one of the rows meanwhile, the chunk goes again as INSERTs above.
COPY_ROWS = 20 * BATCH
_PG_COPY = """
COPY delivery (issue_id, subscriber_id, purpose, recipient, message_id, status, attempts,
               created_at) FROM STDIN
"""
_UNIQUE_VIOLATION = "23505"


def _copied(
    session: Session, rows: Iterable[dict], written: int, progress: Callable[[int], None] | None
) -> bool:
    """COPY the rows; False (and nothing written) if one of them is there already."""
    connection = _unhurried(session)
    try:
        with (
            connection.begin_nested(),
            connection.connection.driver_connection.cursor() as cursor,
            cursor.copy(_PG_COPY) as copy,
        ):
            done, created_at = 0, None  # every row of a build has the same created_at
            for done, row in enumerate(rows, 1):
                created_at = created_at or _as_stored(row["created_at"])
                copy.write_row(
                    (row["issue_id"], row["subscriber_id"], PURPOSE_ISSUE, row["recipient"],
                     row["message_id"], "queued", 0, created_at)
                )  # fmt: skip
                if progress is not None and done % BATCH == 0:
                    progress(written + done)
            if progress is not None and done % BATCH:
                progress(written + done)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        return False
    return True


def _unhurried(session: Session) -> sa.Connection:
    """The session's connection, its transaction committed without waiting for the disk.

    Like SQLite's WAL without an fsync per batch: a crash may lose the last batches, which
    the next build adds again (the build is marked done only after its last batch)."""
    connection = session.connection()
    connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    return connection


def _as_stored(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _pending(issue_id: int, after_id: int, limit: int, *, check: bool = True) -> sa.Select:
    """The next batch of active subscribers (`check`: only those without a row yet)."""
    query = (
        sa.select(Subscriber.id, Subscriber.email)
        .where(Subscriber.status == "active", Subscriber.id > after_id)
        .order_by(Subscriber.id)
        .limit(limit)
    )
    if check:
        already = sa.exists().where(
            Delivery.issue_id == issue_id,
            Delivery.subscriber_id == Subscriber.id,
            Delivery.purpose == PURPOSE_ISSUE,
        )
        query = query.where(~already)
    return query


def _counts(session: Session, issue_id: int) -> tuple[int, int]:
    existing = session.scalar(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.purpose == PURPOSE_ISSUE)
    )
    skipped = session.scalar(
        sa.select(sa.func.count()).select_from(Subscriber).where(Subscriber.status != "active")
    )
    return existing or 0, skipped or 0


def queue_single(
    session: Session,
    settings: Settings,
    purpose: str,
    recipient: str,
    subscriber_id: int | None,
    message_bytes: bytes,
    message_id: str,
    *,
    issue_id: int | None = None,
    clock: Clock = system_clock,
) -> Delivery:
    """Queue a one-off message (confirmation, test send) in the ledger, stored whole.

    Its Date is dropped (the sender stamps it when it leaves) and a Feedback-ID added.
    Idempotent on message_id: the same message queued twice is one row.
    """
    if purpose not in SINGLE_PURPOSES:
        raise ValueError(f"purpose: {purpose!r} is not one of {', '.join(SINGLE_PURPOSES)}")
    found = session.exec(select(Delivery).where(Delivery.message_id == message_id)).first()
    if found is not None:
        return found
    head, sep, body = message_bytes.partition(b"\r\n\r\n")
    head = _DATE_LINE.sub(b"", head + b"\r\n")
    if not re.search(rb"^Feedback-ID:", head, re.IGNORECASE | re.M):
        head += b"Feedback-ID: " + feedback_id(settings, purpose).encode("ascii") + b"\r\n"
    delivery = Delivery(
        issue_id=issue_id,
        subscriber_id=subscriber_id,
        purpose=purpose,
        recipient=recipient,
        content=head + sep[2:] + body,
        message_id=message_id,
        status="queued",
        created_at=clock(),
    )
    session.add(delivery)
    session.commit()
    return delivery
