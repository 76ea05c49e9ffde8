"""The README's Postfix lines for the mailto address, through a real Postfix on loopback.

Readers' mail to the `List-Unsubscribe` mailto address (plain, or with the token in a plus
address) and a vacation reply to the envelope sender land in the same Maildir as the DSNs;
`jeudis inbound --maildir` unsubscribes exactly the readers whose token verifies.
"""

from __future__ import annotations

import smtplib

import pytest
from postfix_server import BOUNCE_DOMAIN, UNSUBSCRIBE, Postfix, unavailable
from returns_helpers import add_readers, inbound, tamper
from smtp_server import SmtpServer
from sqlmodel import select

from newsletter import tokens
from newsletter.db import instance_secret, open_session
from newsletter.models import Delivery, Subscriber
from newsletter.returnpath import return_path

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "")


def _mail(sender: str, to: str, subject: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
        f"Message-ID: <{abs(hash((sender, to, subject)))}@example.net>\r\n\r\nMerci.\r\n"
    ).encode()


def test_mailto_unsubscribes_and_replies_reach_inbound_through_postfix(home, clock):
    env = {
        "JEUDIS_BOUNCE_ADDRESS": f"bounces@{BOUNCE_DOMAIN}",
        "JEUDIS_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE,
    }
    home = home.with_env(**env)
    settings = home.settings
    ids = add_readers(settings, clock)
    secret = instance_secret(settings)
    token = {email: tokens.sign(secret, "unsubscribe", sid, email) for email, sid in ids.items()}
    local, _, domain = UNSUBSCRIBE.partition("@")
    # Tampered, never equal: a fixed last character would be carol's own one time in 64.
    forged = tamper(token["carol@example.com"])
    messages = [
        ("alice@example.net", UNSUBSCRIBE, f"unsubscribe-{token['alice@example.net']}", ""),
        ("bob@example.org", f"{local}+unsubscribe-{token['bob@example.org']}@{domain}", "Stop", ""),
        ("mallory@example.com", UNSUBSCRIBE, f"unsubscribe-{forged}", ""),
        (
            "dave@example.fr",
            return_path(secret, settings.bounce_address, "2026-w48", ids["dave@example.fr"]),
            "Absence du bureau",
            "Auto-Submitted: auto-replied\r\n",
        ),
    ]
    with SmtpServer() as sink, Postfix(sink.port) as mta:
        with smtplib.SMTP("127.0.0.1", mta.port) as smtp:
            for sender, to, subject, extra in messages:
                smtp.sendmail(sender, [to], _mail(sender, to, subject, extra))
        arrived = mta.wait_for_returns(len(messages))
        assert len(arrived) == len(messages), mta.report()
        result = inbound(home.path, "--maildir", str(mta.maildir), env=home.env)
    assert result.exit_code == 0, result.output
    assert "unsubscribe: 2" in result.output and "forged: 1" in result.output
    assert "auto_reply: 1" in result.output
    with open_session(settings) as session:
        gone = {s.email for s in session.exec(select(Subscriber)) if s.status != "active"}
        goodbyes = session.exec(select(Delivery).where(Delivery.purpose == "goodbye")).all()
    assert gone == {"alice@example.net", "bob@example.org"}
    assert sorted(d.recipient for d in goodbyes) == ["alice@example.net", "bob@example.org"]
