"""Deliver the outbox to the SMTP relay: resumable, rate-limited, retried, at-least-once.

The Delivery table is the ledger. Queued rows are sent oldest first over one reused SMTP
connection (re-opened when the relay drops it), at most `rate` messages per second.

- A temporary failure (4xx, a dropped connection, a timeout) is retried with exponential
  backoff, RETRY_ATTEMPTS times in one run; then the row stays queued with `last_error`
  and the next run tries again.
- A permanent failure (5xx to the recipient or to the message) marks the Delivery
  `failed` and the subscriber `bounced`, with the relay's answer in both.
- A 5xx to our sender address, a refused login or a TLS failure is a configuration
  problem: the run stops (RelayError) instead of bouncing every reader.
- An issue message whose subscriber is no longer active (unsubscribed, bounced since the
  build) is marked `skipped`, never sent.

The kill line — AT-LEAST-ONCE. Before handing a message to the relay the row's `attempts`
is incremented and committed ("in flight"); once the relay answers 250 the row is marked
`sent` and committed. If the process dies between the two, the row is still `queued` and
the next run sends it again. So after a crash at most one message (the one in flight) may
reach its reader twice; no message is ever lost. That is the usual SMTP trade-off (a
duplicate beats a silent loss; the relay itself works the same way). A message is never
sent twice otherwise: a lock file keeps two runs from sending at the same time.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr

from sqlmodel import Session, col, func, select

from newsletter.config import Settings
from newsletter.errors import JeudisError
from newsletter.models import Delivery, Subscriber
from newsletter.relay import (
    ConnectFailed,
    Relay,
    classify,
    describe,
    dkim_signer,
    parse_smtp_url,
)
from newsletter.subscribers import set_status
from newsletter.weeks import Clock

RETRY_ATTEMPTS = 4  # tries per message per run
RETRY_BASE_DELAY = 1.0  # seconds; doubled after each temporary failure


class RelayError(JeudisError):
    """The relay cannot be reached or refuses us (not a reader's fault): the run stops."""

    report: SendReport | None = None  # what the run did before it stopped


def crlf(data: bytes) -> bytes:
    """SMTP wants CRLF line ends; .eml files may have bare LF."""
    return re.sub(rb"\r?\n", b"\r\n", data)


@dataclass
class Pacer:
    """At most `rate` sends per second (rate <= 0: no limit); time is injectable for tests."""

    rate: float
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float | None = None

    def wait(self) -> None:
        if self.rate <= 0:
            return
        now = self.monotonic()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.rate


# ---------------------------------------------------------------- the run


@dataclass
class SendReport:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    deferred: int = 0  # temporary failures left queued for the next run
    remaining: int = 0  # still queued after the run
    planned: list[Delivery] = field(default_factory=list)  # --dry-run: what would go

    def summary(self) -> str:
        return (
            f"sent: {self.sent}, skipped: {self.skipped}, failed: {self.failed}, "
            f"remaining: {self.remaining}"
        )


Progress = Callable[[Delivery, str], None]


def queued(
    session: Session, limit: int | None = None, only: Sequence[int] | None = None
) -> list[Delivery]:
    """The queued deliveries (all, or those whose id is in `only`), oldest first."""
    query = (
        select(Delivery)
        .where(Delivery.status == "queued")
        .order_by(Delivery.created_at, Delivery.id)
    )
    if only is not None:
        query = query.where(col(Delivery.id).in_(list(only)))
    return list(session.exec(query.limit(limit) if limit else query))


def count_queued(session: Session) -> int:
    return session.exec(select(func.count()).where(Delivery.status == "queued")).one()


@dataclass
class _Run:
    session: Session
    settings: Settings
    clock: Clock
    relay: Relay
    pacer: Pacer
    sleep: Callable[[float], None]
    sign: Callable[[bytes], bytes] | None
    sender: str

    def skip_reason(self, delivery: Delivery, subscriber: Subscriber | None) -> str | None:
        if subscriber is None:
            return None
        if delivery.purpose == "issue" and subscriber.status != "active":
            return f"subscriber is {subscriber.status}"
        if delivery.purpose == "confirm" and subscriber.status == "active":
            return "subscriber already confirmed"
        return None

    def finish(self, delivery: Delivery, status: str, error: str | None = None) -> str:
        delivery.status, delivery.last_error = status, error
        if status == "sent":
            delivery.sent_at = self.clock()
        self.session.add(delivery)
        self.session.commit()
        return status

    def deliver(self, delivery: Delivery) -> str:
        """Send one queued message; returns sent, skipped, failed or deferred."""
        subscriber = (
            self.session.get(Subscriber, delivery.subscriber_id) if delivery.subscriber_id else None
        )
        reason = self.skip_reason(delivery, subscriber)
        if reason:
            return self.finish(delivery, "skipped", reason)
        try:
            data = crlf((self.settings.home / delivery.path).read_bytes())
        except OSError as exc:
            return self.finish(delivery, "failed", f"{delivery.path}: {exc.strerror}")
        if not data.strip():  # a build cut short by a power loss (see outbox.py)
            return self.finish(delivery, "failed", f"{delivery.path}: empty message file")
        if self.sign:
            data = self.sign(data)
        return self.hand_over(delivery, subscriber, data)

    def hand_over(self, delivery: Delivery, subscriber: Subscriber | None, data: bytes) -> str:
        """Up to RETRY_ATTEMPTS tries, each committed as in flight before the relay sees it."""
        last: BaseException | None = None
        for attempt in range(RETRY_ATTEMPTS):
            if attempt:
                self.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1))
            self.pacer.wait()
            delivery.attempts += 1
            self.session.add(delivery)
            self.session.commit()
            try:
                self.relay.send(self.sender, delivery.recipient, data)
            except (OSError, smtplib.SMTPException, ConnectFailed) as exc:
                last = exc
                kind = classify(exc.args[0] if isinstance(exc, ConnectFailed) else exc)
                if kind == "fatal":
                    self.finish(delivery, "queued", describe(exc))
                    raise RelayError(f"smtp: {self.relay.target}: {describe(exc)}") from None
                if kind == "permanent":
                    return self.bounce(delivery, subscriber, describe(exc))
                delivery.last_error = describe(exc)
                continue
            return self.finish(delivery, "sent")
        self.finish(delivery, "queued", describe(last))
        if isinstance(last, ConnectFailed):  # the relay is down: every message would wait
            raise RelayError(f"smtp: {self.relay.target}: {describe(last)}")
        return "deferred"

    def bounce(self, delivery: Delivery, subscriber: Subscriber | None, error: str) -> str:
        if subscriber is not None and subscriber.status != "bounced":
            set_status(subscriber, "bounced", self.clock(), error)
            self.session.add(subscriber)
        return self.finish(delivery, "failed", error)


def send_outbox(
    session: Session,
    settings: Settings,
    clock: Clock,
    limit: int | None = None,
    rate: float | None = None,
    *,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
    only: Sequence[int] | None = None,
) -> SendReport:
    """Send the queued deliveries (at most `limit`; only the ids in `only` if given, as for a
    test send from the desk): the one way in for the CLI, the scheduler and the desk."""
    report = SendReport()
    todo = queued(session, limit, only)
    if dry_run:
        report.planned, report.remaining = todo, count_queued(session)
        return report
    target = parse_smtp_url(settings.smtp_url)
    run = _Run(
        session,
        settings,
        clock,
        Relay(target, settings.smtp_timeout),
        Pacer(settings.send_rate if rate is None else rate, monotonic, sleep),
        sleep,
        dkim_signer(settings),
        parseaddr(settings.from_address)[1],
    )
    try:
        with _send_lock(settings):
            for delivery in todo:
                outcome = run.deliver(delivery)
                setattr(report, outcome, getattr(report, outcome) + 1)
                if progress:
                    progress(delivery, outcome)
    except RelayError as exc:
        exc.report = report
        raise
    finally:
        run.relay.close()
        report.remaining = count_queued(session)
    return report


class _send_lock:  # noqa: N801 (used as a context manager)
    """One sender at a time per instance; the kernel releases it if the process dies."""

    def __init__(self, settings: Settings):
        self.path = settings.home / "send.lock"

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            self.handle = None
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "w")  # noqa: SIM115
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise JeudisError(f"{self.path}: another `jeudis send` is running") from None
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()
