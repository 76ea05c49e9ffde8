"""The audit log: who changed what and when, from the desk, the CLI or a reader's own link.

One function writes it, `record`, called by the edges (CLI commands, desk routes) and by the
few service functions a reader triggers (confirm, unsubscribe). Actors are an editor's name
in the desk, `cli:USER` for the command line (the OS user), `local` for the desk on
loopback without a login, `reader` for a subscriber's own link.
Targets name a row (`item:12`, `subscriber:7`, `issue:2026-W49`, `feed:3`, `editor:alice`);
addresses are never written here, so forgetting a reader leaves nothing of them behind.
"""

from __future__ import annotations

import getpass
import os

from sqlmodel import Session, col, select

from newsletter.models import AuditEntry
from newsletter.weeks import Clock, system_clock

DETAIL_MAX = 500


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    detail: str = "",
    *,
    clock: Clock = system_clock,
) -> AuditEntry:
    """Write one entry and commit (with whatever change the session holds)."""
    entry = AuditEntry(
        at=clock(), actor=actor, action=action, target=target, detail=detail[:DETAIL_MAX]
    )
    session.add(entry)
    session.commit()
    return entry


def entries(session: Session, *, target: str | None = None, limit: int = 50) -> list[AuditEntry]:
    """The newest entries first, optionally only those about one target."""
    query = select(AuditEntry).order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
    if target is not None:
        query = query.where(AuditEntry.target == target)
    return list(session.exec(query.limit(limit)))


def cli_actor() -> str:
    """`cli:USER`, the operating-system user running the command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's bare uid)
        user = str(os.getuid())
    return f"cli:{user}"


def as_dict(entry: AuditEntry) -> dict[str, str]:
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
    }
