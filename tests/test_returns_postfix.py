"""The feedback loop through a real Postfix on loopback.

An issue leaves through Postfix with VERP envelope senders; an aiosmtpd sink standing for
the world accepts some readers, refuses others (550 5.1.1) and defers one (451); Postfix
turns the refusals into DSNs to the VERP addresses, delivered to a Maildir; `jeudis inbound
--maildir` reads them. Afterwards exactly the refused readers are bounced.
"""

from __future__ import annotations

import json
from email import message_from_bytes

import pytest
from jeudis_cli import REPO, run
from postfix_server import BOUNCE_DOMAIN, Postfix, unavailable
from returns_helpers import inbound
from smtp_server import SmtpServer
from sqlmodel import select

from newsletter.db import instance_secret, open_session
from newsletter.models import Subscriber
from newsletter.returnpath import read_return_path

ACCEPTED = ["ana@example.net", "ben@example.org", "chloe@example.com", "dina@example.fr"]
REFUSED = ["gone@example.net", "typo@example.org"]
DEFERRED = ["full@example.com"]

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "")


def _send_through(home, port: int) -> int:
    """`jeudis send` to Postfix: each message leaves with its reader's VERP envelope sender."""
    env = {**home.env, "JEUDIS_SMTP_URL": f"smtp://127.0.0.1:{port}"}
    result = run(home.path, "send", "--now", "--rate", "0", env=env)
    assert result.exit_code == 0, result.output
    return int(result.stdout.split(",")[0].removeprefix("sent: "))


def test_postfix_turns_refusals_into_dsns_that_bounce_exactly_the_refused(home):
    home = home.with_env(JEUDIS_BOUNCE_ADDRESS=f"bounces@{BOUNCE_DOMAIN}")
    assert run(home.path, "import", str(REPO / "content"), env=home.env).exit_code == 0
    for address in ACCEPTED + REFUSED + DEFERRED:
        assert run(home.path, "subscriber", "add", address, env=home.env).exit_code == 0
    assert run(home.path, "build", env=home.env).exit_code == 0

    with SmtpServer() as sink, Postfix(sink.port) as mta:
        sink.handler.reject.update(REFUSED)
        sink.handler.temp_fail.update({address: 1000 for address in DEFERRED})
        assert _send_through(home, mta.port) == 7
        returns = mta.wait_for_returns(len(REFUSED + DEFERRED))
        assert len(returns) == 3, mta.report()
        dsn_for = [message_from_bytes(path.read_bytes())["Delivered-To"] for path in returns]
        result = inbound(home.path, "--maildir", str(mta.maildir), env=home.env)
        delivered = sorted(r for m in sink.handler.messages for r in m.recipients)
        senders = {m.recipients[0]: m.sender for m in sink.handler.messages}

    assert result.exit_code == 0, result.output
    assert delivered == sorted(ACCEPTED)
    with open_session(home.settings) as session:
        status = {s.email: (s.status, s.status_reason) for s in session.exec(select(Subscriber))}
    assert {email for email, (state, _) in status.items() if state != "active"} == set(REFUSED)
    for address in REFUSED:
        assert "5.1.1" in status[address][1]
    assert "soft_bounce: 1" in result.output and "hard_bounce: 2" in result.output

    # Every message left with its own reader's signed VERP envelope, and the DSNs came back
    # to those addresses: the reader is known from the envelope, not guessed from the report.
    with open_session(home.settings) as session:
        ids = {s.email: s.id for s in session.exec(select(Subscriber))}
    secret = instance_secret(home.settings)
    for address, sender in senders.items():
        path = read_return_path(secret, sender)
        assert path is not None and (path.subscriber_id, path.week) == (ids[address], "2026-W48")
    named = sorted(read_return_path(secret, d).subscriber_id for d in dsn_for)
    assert named == sorted(ids[a] for a in REFUSED + DEFERRED)

    stats = json.loads(run(home.path, "stats", "--json", env=home.env).output)
    assert [(s["recipients"], s["sent"], s["hard_bounces"], s["soft_bounces"]) for s in stats] == [
        (7, 7, 2, 1)
    ]
