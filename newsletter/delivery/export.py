"""`jeudis outbox export`: an issue's messages from the ledger as .eml files or a Maildir.

For anyone who wants to look at them or hand them to another tool. Each message is made as
the sender would make it (dated at export time, not DKIM-signed: signing belongs to the
delivery). Files are replaced atomically and named after their ledger row (`<id>.eml`, or
`new/<week>.<id>.jeudis` in a Maildir), so exporting twice gives the same set of files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.delivery.claims import issue_rows
from newsletter.delivery.ledger import BATCH
from newsletter.delivery.message import load_template
from newsletter.delivery.send import message_for
from newsletter.errors import InputError
from newsletter.files import write_atomic
from newsletter.models import Issue, IssueMessage
from newsletter.weeks import Clock


@dataclass(frozen=True)
class ExportReport:
    week: str
    written: int
    missing: int  # legacy rows whose .eml file is gone
    directory: Path


def export_outbox(
    session: Session,
    settings: Settings,
    clock: Clock,
    directory: Path,
    week: str | None = None,
    *,
    maildir: bool = False,
) -> ExportReport:
    """Write one message per recipient of the issue of `week` (default: the newest issue)."""
    query = select(Issue).order_by(Issue.thursday.desc())
    issue = session.exec(query.where(Issue.week_key == week) if week else query).first()
    if issue is None:
        raise InputError(f"--week: {week or 'any'}: no issue built for that week")
    stored = session.get(IssueMessage, issue.id)
    template = load_template(stored.template) if stored else None
    if maildir:  # fixed names in new/ (Maildir only asks them to be unique): idempotent
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
    secret, now = instance_secret(settings), clock().astimezone(settings.tz)
    written = missing = last_id = 0
    while rows := issue_rows(session, issue.id, last_id, BATCH):
        for row in rows:
            data = message_for(settings, secret, row, template, now)
            if data is None:
                missing += 1
                continue
            name = f"new/{issue.week_key}.{row.id}.jeudis" if maildir else f"{row.id}.eml"
            os.chmod(write_atomic(directory / name, data), 0o600)  # personal data inside
            written += 1
        last_id = rows[-1].id
    return ExportReport(issue.week_key, written, missing, directory)
