"""Editors' accounts: add, list, remove, change a password, and log in (throttled).

Roles: an `editor` queues, edits, approves and previews; an `admin` also sends tests and
manages feeds, readers and editors. An instance from before accounts (one shared
`desk_password_hash`) keeps working: while no account exists, that password opens an
account named `admin`, created (role admin, same hash) at its first login.
"""

from __future__ import annotations

import re

from sqlmodel import Session, select

from newsletter.accounts import sessions, throttle
from newsletter.accounts.passwords import dummy_hash, hash_password, verify_password
from newsletter.audit import record
from newsletter.config import Settings
from newsletter.errors import ConflictError, InputError, NotFoundError
from newsletter.models import EDITOR_ROLES, Editor
from newsletter.weeks import Clock

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
LEGACY_NAME = "admin"


class BadCredentials(Exception):
    """Wrong name or password (the page does not say which)."""


def check_name(name: str) -> str:
    """The stored form of an account name (lower case), or InputError."""
    folded = name.strip().lower()
    if not NAME_RE.match(folded):
        raise InputError(
            f"name: {name!r} is not an account name (1 to 40 of a-z, 0-9, '.', '_', '-')"
        )
    return folded


def check_role(role: str) -> str:
    if role not in EDITOR_ROLES:
        raise InputError(f"role: {role!r} is not one of {', '.join(EDITOR_ROLES)}")
    return role


def find(session: Session, name: str) -> Editor | None:
    return session.exec(select(Editor).where(Editor.name == name.strip().lower())).first()


def any_editor(session: Session) -> bool:
    return session.exec(select(Editor.id).limit(1)).first() is not None


def list_editors(session: Session) -> list[Editor]:
    return list(session.exec(select(Editor).order_by(Editor.name)))


def add_editor(
    session: Session, clock: Clock, actor: str, name: str, password: str, role: str = "editor"
) -> Editor:
    """A new account (ConflictError if the name is taken)."""
    name, role = check_name(name), check_role(role)
    if find(session, name) is not None:
        raise ConflictError(f"name: {name} already has an account")
    now = clock()
    editor = Editor(
        name=name,
        role=role,
        password_hash=hash_password(password),
        created_at=now,
        password_changed_at=now,
    )
    session.add(editor)
    record(session, actor, "editor.add", f"editor:{name}", f"role {role}", clock=clock)
    return editor


def _existing(session: Session, name: str) -> Editor:
    editor = find(session, check_name(name))
    if editor is None:
        raise NotFoundError(f"name: {name.strip().lower()} has no account")
    return editor


def remove_editor(session: Session, clock: Clock, actor: str, name: str) -> Editor:
    """Delete an account and end its sessions; its entries in the log stay."""
    editor = _existing(session, name)
    sessions.revoke_all(session, editor.id)
    session.delete(editor)
    record(session, actor, "editor.remove", f"editor:{editor.name}", clock=clock)
    return editor


def set_password(session: Session, clock: Clock, actor: str, name: str, password: str) -> int:
    """Change a password and end every session of the account; returns how many ended."""
    return _replace_password(session, clock, actor, _existing(session, name), password, None)


def change_own_password(
    session: Session,
    clock: Clock,
    name: str,
    current: str,
    new: str,
    keep_token: str | None,
    client: str,
) -> int:
    """An editor's own change in the desk: the current password first (throttled as a
    login), then every other session of the account ends; returns how many."""
    editor = _existing(session, name)
    now = clock()
    keys = throttle.keys_for(editor.name, client)
    throttle.check(session, keys, now)
    if not verify_password(current, editor.password_hash):
        throttle.failed(session, keys, now)
        raise BadCredentials
    return _replace_password(session, clock, editor.name, editor, new, keep_token)


def _replace_password(
    session: Session, clock: Clock, actor: str, editor: Editor, password: str, keep: str | None
) -> int:
    editor.password_hash = hash_password(password)
    editor.password_changed_at = clock()
    session.add(editor)
    ended = sessions.revoke_all(session, editor.id, keep=keep)
    record(
        session,
        actor,
        "editor.password",
        f"editor:{editor.name}",
        f"{ended} session(s) ended",
        clock=clock,
    )
    return ended


def _legacy_admin(session: Session, settings: Settings, name: str) -> Editor | None:
    """The account the old shared password stands for, while no account exists."""
    if name != LEGACY_NAME or not settings.desk_password_hash or any_editor(session):
        return None
    return Editor(name=LEGACY_NAME, role="admin", password_hash=settings.desk_password_hash)


def log_in(
    session: Session, settings: Settings, clock: Clock, name: str, password: str, client: str
) -> tuple[Editor, str]:
    """(editor, session token) for a right name and password; Throttled or BadCredentials."""
    now = clock()
    folded = name.strip().lower()
    keys = throttle.keys_for(folded, client)
    throttle.check(session, keys, now)
    editor = find(session, folded) if NAME_RE.match(folded) else None
    editor = editor or _legacy_admin(session, settings, folded)
    ok = verify_password(password, editor.password_hash if editor else dummy_hash())
    if not (ok and editor is not None):
        throttle.failed(session, keys, now)
        raise BadCredentials
    throttle.succeeded(session, keys)
    if editor.id is None:  # the shared password, moved into an account at first use
        editor.created_at = editor.password_changed_at = now
        session.add(editor)
        record(
            session,
            "migration",
            "editor.add",
            f"editor:{editor.name}",
            "from desk_password_hash",
            clock=clock,
        )
    token = sessions.open_session(session, editor, now)
    record(
        session, editor.name, "editor.login", f"editor:{editor.name}", f"from {client}", clock=clock
    )
    return editor, token
