"""Sample returning messages (tests/fixtures/returns/) made real for one test instance.

The fixtures are messages as Gmail, Outlook, Yahoo, Postfix and qmail write them, with
placeholders where our instance's signatures go: `{{VERP email week}}` (the signed envelope
sender of that reader's issue), `{{TOKEN email}}` (the signed unsubscribe token) and their
`FORGED_` variants (the same with a wrong signature).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from pathlib import Path

from click.testing import CliRunner, Result
from jeudis_cli import FIXTURES, MONDAY

from newsletter import subscribers, tokens
from newsletter.cli import App, main
from newsletter.config import load_settings
from newsletter.db import instance_secret, open_session
from newsletter.models import ContentItem, Delivery, Issue
from newsletter.returnpath import return_path

RETURNS = FIXTURES / "returns"
READERS = (
    "alice@example.net",
    "bob@example.org",
    "carol@example.com",
    "dave@example.fr",
    "erin@example.net",
)
_PLACEHOLDER = re.compile(r"\{\{(FORGED_)?(VERP|TOKEN) ([^ }]+)(?: ([^ }]+))?\}\}")


def tamper(text: str) -> str:
    """The same string with its last character changed: a signature that no longer matches."""
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def render(name: str, settings, ids: dict[str, int], week: str | None = None) -> bytes:
    """The fixture `name` with real (or forged) signatures for this instance's readers.

    `week` moves the message to another issue (its VERP address and its Message-ID)."""
    raw = (RETURNS / name).read_bytes()
    secret = instance_secret(settings)

    def sign(found: re.Match) -> str:
        forged, what, email, tag = found.groups()
        if what == "TOKEN":
            value = tokens.sign(secret, "unsubscribe", ids[email], email)
            return tamper(value) if forged else value
        value = return_path(secret, settings.bounce_address, week or tag, ids[email])
        local, _, domain = value.rpartition("@")
        return f"{local[:-16]}{'0' * 16}@{domain}" if forged else value

    text = _PLACEHOLDER.sub(sign, raw.decode("latin-1"))
    if week:
        text = re.sub(r"(?im)^(message-id:\s*<)", rf"\g<1>{week}.", text, count=1)
    return text.encode("latin-1")


def inbound(
    home: Path,
    *args: str,
    stdin: bytes | None = None,
    env: dict | None = None,
    now: datetime = MONDAY,
) -> Result:
    """`jeudis inbound ARGS` on a JEUDIS_HOME, with a message on standard input."""
    environ = {"JEUDIS_HOME": str(home), **(env or {})}
    app = App(clock=lambda: now, _settings=load_settings(environ))
    return CliRunner().invoke(
        main, ["inbound", *args], obj=app, env=environ, input=stdin, catch_exceptions=False
    )


def issues_sent(home, weeks, ids):
    """Issues, each with a sent delivery row for every reader."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with open_session(home.settings) as session:
        item = ContentItem(
            kind="news", title="T", url="https://a.example/", created_at=now, updated_at=now
        )
        session.add(item)
        session.flush()
        for n, week in enumerate(weeks, start=1):
            thursday = date.fromisocalendar(2026, int(week[-2:]), 4)
            issue = Issue(
                week_key=week.upper(),
                number=n,
                thursday=thursday,
                news_id=item.id,
                example_id=item.id,
                tool_id=item.id,
                built_at=now,
                sent_at=datetime.combine(thursday, time(7), tzinfo=UTC),
            )
            session.add(issue)
            session.flush()
            for email, sid in ids.items():
                session.add(
                    Delivery(
                        issue_id=issue.id,
                        subscriber_id=sid,
                        recipient=email,
                        path=f"outbox/{week}/{sid}.eml",
                        message_id=f"<{week}.{sid}@x>",
                        status="sent",
                        created_at=now,
                    )
                )
        session.commit()


def add_readers(settings, clock) -> dict[str, int]:
    """The sample readers, active; their ids by address."""
    with open_session(settings) as session:
        return {email: subscribers.add(session, clock, email).subscriber.id for email in READERS}
