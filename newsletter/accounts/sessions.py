"""Desk sessions kept on the server: the signed cookie carries a random id, the database its
SHA-256. Logging out, changing a password or removing an account deletes the rows, so a
replayed cookie is refused. A session ends after `desk_session_idle_minutes` without use
and `desk_session_hours` after login, whichever comes first.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from newsletter.config import Settings
from newsletter.models import DeskSession, Editor

# last_seen_at is written at most this often: a page with live reload must not write
# to the database on every request.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Identity:
    """Who is acting in the desk: an account's name and role."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _row_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, editor: Editor, now: datetime) -> str:
    """A new session for `editor`; returns the token to put in the cookie (commits)."""
    token = secrets.token_urlsafe(32)
    session.add(
        DeskSession(id=_row_id(token), editor_id=editor.id, created_at=now, last_seen_at=now)
    )
    session.commit()
    return token


def current(session: Session, settings: Settings, token: str, now: datetime) -> Identity | None:
    """Who the token belongs to, or None (unknown, revoked, idle too long or too old)."""
    if not isinstance(token, str) or not token:
        return None
    row = session.get(DeskSession, _row_id(token))
    if row is None:
        return None
    idle = timedelta(minutes=settings.desk_session_idle_minutes)
    if now - row.last_seen_at > idle or now - row.created_at > timedelta(
        hours=settings.desk_session_hours
    ):
        session.delete(row)
        session.commit()
        return None
    editor = session.get(Editor, row.editor_id)
    if editor is None:
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
        session.commit()
    return Identity(editor.name, editor.role)


def close(session: Session, token: str) -> None:
    """Log out: the token is worth nothing from now on (commits)."""
    if isinstance(token, str) and token:
        session.exec(delete(DeskSession).where(col(DeskSession.id) == _row_id(token)))
        session.commit()


def revoke_all(session: Session, editor_id: int | None, keep: str | None = None) -> int:
    """End every session of one account but `keep`'s; returns how many (not committed)."""
    kept = _row_id(keep) if keep else None
    query = select(DeskSession).where(DeskSession.editor_id == editor_id)
    rows = [row for row in session.exec(query) if row.id != kept]
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)
