"""Senders claim ledger rows, and write a status only for the rows they hold.

On PostgreSQL any number of senders run at once: a claim selects due rows with
`FOR UPDATE SKIP LOCKED` and stamps them `claimed_by` (the run) and `lease_until` in one short
transaction, so two senders never hold the same row; a sender that dies leaves its rows to
whoever comes after the lease. On SQLite one sender runs at a time (a lock next to the
database file, see send.py), so a claim there may take over any lease (the holder is dead).

Every status write is `UPDATE ... WHERE id = :id AND claimed_by = :me`: a sender whose lease
was taken over writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from newsletter.models import Delivery, Issue, IssueMessage, Subscriber

LEASE = timedelta(minutes=10)
WAITING = ("queued", "deferred")
_D = Delivery.__table__
_S = Subscriber.__table__


@dataclass(frozen=True)
class Claimed:
    """A row a sender holds, with what it needs to make the message."""

    id: int
    purpose: str
    recipient: str
    message_id: str
    attempts: int
    issue_id: int | None
    week_key: str | None
    subscriber_id: int | None
    subscriber_name: str
    subscriber_status: str | None
    content: bytes | None
    path: str | None


@dataclass(frozen=True)
class ClaimFilter:
    """Which rows a run may take: due now; issues only from their send time unless
    `send_now`; only the ids in `only` if given (a test send from the desk)."""

    now: datetime
    send_now: bool = False
    only: Sequence[int] | None = None
    take_over: bool = False  # SQLite: the one sender may take any lease (its holder is dead)


def _due(where: ClaimFilter, me: str = "") -> sa.ColumnElement[bool]:
    now = where.now
    clauses = [
        _D.c.status.in_(WAITING),
        sa.or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= now),
    ]
    if where.take_over:  # any claim but this run's own (its other workers hold those)
        clauses.append(sa.or_(_D.c.claimed_by.is_(None), _D.c.claimed_by != me))
    else:
        clauses.append(sa.or_(_D.c.claimed_by.is_(None), _D.c.lease_until < now))
    if not where.send_now:
        started = sa.select(IssueMessage.issue_id).where(IssueMessage.send_at <= now)
        clauses.append(
            sa.or_(_D.c.purpose != "issue", _D.c.path.is_not(None), _D.c.issue_id.in_(started))
        )
    if where.only is not None:
        clauses.append(_D.c.id.in_(list(where.only)))
    return sa.and_(*clauses)


def claim(session: Session, me: str, where: ClaimFilter, limit: int) -> list[Claimed]:
    """Take up to `limit` due rows, oldest first, for this run (committed before returning)."""
    ids = sa.select(_D.c.id).where(_due(where, me)).order_by(_D.c.id).limit(limit)
    taken = list(session.execute(ids.with_for_update(skip_locked=True)).scalars())
    if not taken:
        session.rollback()
        return []
    session.execute(
        sa.update(_D).where(_D.c.id.in_(taken)).values(claimed_by=me, lease_until=where.now + LEASE)
    )
    session.commit()
    rows = session.execute(_rows().where(_D.c.id.in_(taken), _D.c.claimed_by == me)).all()
    session.rollback()  # end the read transaction: nothing held between claims
    return [_claimed(row) for row in rows]


def _rows() -> sa.Select:
    return (
        sa.select(
            _D.c.id,
            _D.c.purpose,
            _D.c.recipient,
            _D.c.message_id,
            _D.c.attempts,
            _D.c.issue_id,
            Issue.week_key,
            _D.c.subscriber_id,
            _S.c.name,
            _S.c.status,
            _D.c.content,
            _D.c.path,
        )  # fmt: skip
        .select_from(_D)
        .outerjoin(_S, _S.c.id == _D.c.subscriber_id)
        .outerjoin(Issue, Issue.id == _D.c.issue_id)
        .order_by(_D.c.id)
    )


def _claimed(row) -> Claimed:
    return Claimed(*row[:8], row[8] or "", *row[9:])


def issue_rows(session: Session, issue_id: int, after_id: int, limit: int) -> list[Claimed]:
    """An issue's rows by id, `limit` at a time (for the export), whatever their status."""
    query = _rows().where(_D.c.issue_id == issue_id, _D.c.purpose == "issue", _D.c.id > after_id)
    return [_claimed(row) for row in session.execute(query.limit(limit))]


def due(session: Session, where: ClaimFilter, limit: int | None) -> list[tuple[int, str, str]]:
    """(id, recipient, purpose) of the rows a run would take, without taking them."""
    query = sa.select(_D.c.id, _D.c.recipient, _D.c.purpose).where(_due(where)).order_by(_D.c.id)
    return [tuple(row) for row in session.execute(query.limit(limit))]


def skip_reason(row: Claimed) -> str | None:
    """Why a held row must not go, from the reader's status read at claim time."""
    if row.subscriber_status is None:
        return None
    if row.purpose == "issue" and row.subscriber_status != "active":
        return f"subscriber is {row.subscriber_status}"
    if row.purpose == "confirm" and row.subscriber_status == "active":
        return "subscriber already confirmed"
    return None


def _settle_statement(tried: bool, sent: bool) -> sa.Update:
    values = {
        "status": sa.bindparam("status"),
        "last_error": sa.bindparam("error"),
        "next_attempt_at": sa.bindparam("next_attempt_at", type_=_D.c.next_attempt_at.type),
        "claimed_by": None,
        "lease_until": None,
    }
    if tried:
        values["attempts"] = _D.c.attempts + 1
    if sent:
        values["sent_at"] = sa.bindparam("sent_at", type_=_D.c.sent_at.type)
    held = sa.and_(_D.c.id == sa.bindparam("row_id"), _D.c.claimed_by == sa.bindparam("me"))
    return sa.update(_D).where(held).values(**values)


# Built once: a statement per message would spend more CPU in SQLAlchemy than in SMTP.
_SETTLE = {(t, s): _settle_statement(t, s) for t in (False, True) for s in (False, True)}


def settle(
    session: Session | sa.Connection,
    me: str,
    row_id: int,
    status: str,
    *,
    tried: bool = True,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
    sent_at: datetime | None = None,
) -> bool:
    """Write a row's outcome and let it go, if this run still holds it; committed."""
    params = {"status": status, "error": error, "next_attempt_at": next_attempt_at,
              "row_id": row_id, "me": me}  # fmt: skip
    if sent_at is not None:
        params["sent_at"] = sent_at
    result = session.execute(_SETTLE[tried, sent_at is not None], params)
    session.commit()
    return result.rowcount == 1


def bounce_reader(session: Session, subscriber_id: int, now: datetime, reason: str) -> None:
    """Mark a reader bounced (the relay refused their mailbox for good), reason stored."""
    session.execute(
        sa.update(_S)
        .where(_S.c.id == subscriber_id, _S.c.status != "bounced")
        .values(
            status="bounced",
            status_changed_at=now,
            bounced_at=now,
            last_error=reason,
            status_reason=f"refused by the relay: {reason}",
        )
    )


def release(session: Session, me: str) -> int:
    """Let go of every row this run still holds, unchanged (a stopped run: nothing lost)."""
    result = session.execute(
        sa.update(_D).where(_D.c.claimed_by == me).values(claimed_by=None, lease_until=None)
    )
    session.commit()
    return result.rowcount


def expire_overdue(session: Session, now: datetime, max_defer: timedelta) -> int:
    """Mark `expired` what still waits max_defer after its send time (an issue's scheduled
    time, or a one-off's creation): never tried again. Rows under a live lease are left."""
    cutoff = now - max_defer
    overdue_issues = sa.select(IssueMessage.issue_id).where(IssueMessage.send_at < cutoff)
    result = session.execute(
        sa.update(_D)
        .where(
            _D.c.status.in_(WAITING),
            sa.or_(_D.c.claimed_by.is_(None), _D.c.lease_until < now),
            sa.or_(
                sa.and_(_D.c.purpose == "issue", _D.c.issue_id.in_(overdue_issues)),
                sa.and_(
                    sa.or_(_D.c.purpose != "issue", _D.c.path.is_not(None)),
                    _D.c.created_at < cutoff,
                ),
            ),
        )
        .values(
            status="expired",
            claimed_by=None,
            lease_until=None,
            last_error=sa.func.coalesce(_D.c.last_error, "never sent") + " (expired)",
        )
    )
    session.commit()
    return result.rowcount


def count_waiting(session: Session) -> int:
    """Rows that still wait for a sender (queued or deferred)."""
    return session.scalar(sa.select(sa.func.count()).where(_D.c.status.in_(WAITING))) or 0
