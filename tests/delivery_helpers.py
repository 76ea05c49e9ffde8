"""Shared by the sender's tests: a built issue in the ledger, a send that never sleeps."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select
from test_ledger import make_issue
from test_message import realistic_issue

from newsletter import subscribers
from newsletter.db import open_session
from newsletter.delivery import send_outbox, write_issue_outbox
from newsletter.models import Delivery, Subscriber

ADDRESSES = ["ada@example.org", "bea@example.org", "cyril@example.org"]
THURSDAY_8AM = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 2026-W48's send time (Paris)


class FakeTime:
    """monotonic() and sleep() that never wait: sleeping moves the time on."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def queue(home, clock, addresses: list[str]) -> list[str]:
    """Subscribers and the 2026-W48 issue in the ledger, as `jeudis build` leaves them;
    the Message-IDs in row order."""
    settings = home.settings
    with open_session(settings) as session:
        for address in addresses:
            subscribers.add(session, clock, address, name=address.split("@")[0].title())
        issue = make_issue(session)
        write_issue_outbox(session, settings, issue, realistic_issue(1), clock)
        return [d.message_id for d in session.exec(select(Delivery).order_by(Delivery.id))]


def deliveries(home) -> dict[str, Delivery]:
    with open_session(home.settings) as session:
        return {d.recipient: d for d in session.exec(select(Delivery))}


def subscriber(home, email) -> Subscriber:
    with open_session(home.settings) as session:
        return subscribers.find(session, email)


def send(home, clock, server=None, time=None, **kwargs):
    env = {"JEUDIS_SMTP_URL": server.url} if server else {}
    settings = home.with_env(**env).settings
    time = time or FakeTime()
    with open_session(settings) as session:
        return send_outbox(
            session, settings, clock, sleep=time.sleep, monotonic=time.monotonic, **kwargs
        )
