"""`jeudis inbound --imap` against a real Dovecot on 127.0.0.1."""

from __future__ import annotations

import imaplib

import pytest
from imap_server import PASSWORD, Dovecot, unavailable
from returns_helpers import add_readers, inbound, render
from sqlmodel import select

from newsletter.db import open_session
from newsletter.models import Subscriber

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "")

SAMPLES = ["gmail_hard_dsn.eml", "gmail_vacation_reply.eml", "human_reply.eml"]


def _flags(port: int) -> list[set[str]]:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login("retours", PASSWORD)
    client.select("INBOX", readonly=True)
    _, data = client.uid("FETCH", "1:*", "(FLAGS)")
    client.logout()
    return [set(imaplib.ParseFlags(item)) for item in data]


def test_the_unseen_messages_of_a_mailbox_are_read_once(home, clock):
    ids = add_readers(home.settings, clock)
    with Dovecot() as server:
        client = imaplib.IMAP4("127.0.0.1", server.port)
        client.login("retours", PASSWORD)
        for name in SAMPLES:
            client.append("INBOX", None, None, render(name, home.settings, ids))
        client.logout()

        result = inbound(home.path, "--imap", server.url())
        assert result.exit_code == 0, result.output + server.log()
        assert "hard_bounce: 1" in result.output and "other: 1" in result.output
        # Read ones are seen; the one kept for a person stays unseen, flagged.
        assert _flags(server.port) == [{b"\\Seen"}, {b"\\Seen"}, {b"\\Flagged"}]

        again = inbound(home.path, "--imap", server.url())
        assert "read 1 message(s)" in again.output and "already read: 1" in again.output
        wrong = inbound(home.path, "--imap", server.url().replace(PASSWORD, "nope"))
        assert wrong.exit_code == 1 and "imap: 127.0.0.1" in wrong.output

    with open_session(home.settings) as session:
        bounced = [s.email for s in session.exec(select(Subscriber)) if s.status != "active"]
    assert bounced == ["bob@example.org"]


def test_a_bad_imap_url_is_bad_input(home):
    result = inbound(home.path, "--imap", "http://example.org/")
    assert result.exit_code == 2
    assert "inbound_imap_url" in result.output
