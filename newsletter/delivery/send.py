"""The sender: claims ledger rows, makes each message, hands it to the relay, settles the row.

`send_outbox` runs `connections` workers, each with its own SMTP connection and database
session, under one global rate limit. Per row: the reader's status is re-checked at claim
time (delivery/claims.py); the message is spliced, dated and DKIM-signed now; the envelope
sender is the reader's VERP return path; the relay's answer is classified
(delivery/classify.py) and only then is the row written (`sent`, `bounced`, `deferred` with
its next attempt). A STOP answer or the circuit breaker ends the run (RelayError, exit 1):
the row stays queued, nobody is bounced, the next run resumes.

AT-LEAST-ONCE. A row is claimed (committed) before its message goes, and marked `sent` after
the relay's 250. A crash between the two, or a 250 lost on the wire, leaves the row waiting:
the next run sends that message again. So after a crash each connection's one message in
flight may reach its reader twice; no message is ever lost, none other is sent twice.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.delivery import claims
from newsletter.delivery.ahead import Ahead, Made
from newsletter.delivery.claims import Claimed, ClaimFilter
from newsletter.delivery.classify import Answer, Breaker, Verdict, classify
from newsletter.delivery.ledger import top_up
from newsletter.delivery.locks import sender_lock
from newsletter.delivery.message import MessageTemplate, date_header, for_subscriber
from newsletter.delivery.message import load_template as _load
from newsletter.delivery.relay import Relay, RelayFault, parse_smtp_url
from newsletter.delivery.settler import Settler, synchronous
from newsletter.delivery.signing import dkim_signer
from newsletter.errors import JeudisError
from newsletter.models import IssueMessage
from newsletter.returnpath import return_path
from newsletter.weeks import Clock

# Rows a run holds at a time, shared among its connections: a claim costs three statements
# and a commit, so not one row at a time; not many more, as the reader's status is read at
# claim time and a slow sender should leave work for the others.
CLAIM_BATCH = 50
AHEAD = 1
# When a deferred message is tried again, by its number of attempts so far.
BACKOFF = tuple(timedelta(minutes=m) for m in (5, 15, 30, 60, 120, 240))
RUN_PAUSE_MAX = 2.0  # seconds: the run slows down while the relay defers in a row


class RelayError(JeudisError):
    """The relay refuses us or the message, or keeps failing: the run stopped (exit 1)."""

    report: SendReport | None = None  # what the run did before it stopped


@dataclass
class SendReport:
    sent: int = 0
    deferred: int = 0  # temporary failures: tried again after their backoff
    bounced: int = 0
    expired: int = 0  # still undelivered max_defer after their send time: given up
    skipped: int = 0
    failed: int = 0  # a legacy .eml file missing or empty
    remaining: int = 0  # still waiting after the run
    seconds: float = 0.0
    stopped: str | None = None  # the relay's answer that stopped the run
    planned: list[tuple[int, str, str]] = field(default_factory=list)  # --dry-run

    @property
    def ok(self) -> bool:
        """Nothing this run tried is left in error (exit 0)."""
        return not (self.stopped or self.deferred or self.expired or self.failed)

    def summary(self) -> str:
        failed = f", failed: {self.failed}" if self.failed else ""
        return (
            f"sent: {self.sent}, deferred: {self.deferred}, bounced: {self.bounced}, "
            f"expired: {self.expired}, skipped: {self.skipped}{failed}, "
            f"remaining: {self.remaining} ({self.seconds:.1f} s)"
        )


Progress = Callable[[Claimed, str], None]


class Pacer:
    """At most `rate` sends per second across all workers (rate <= 0: no limit)."""

    def __init__(self, rate: float, monotonic: Callable[[], float], sleep: Callable):
        self.rate, self.monotonic, self.sleep = rate, monotonic, sleep
        self.lock, self.next = threading.Lock(), None

    def wait(self) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            now = self.monotonic()
            start = now if self.next is None else max(now, self.next)
            self.next = start + 1.0 / self.rate
        if start > now:
            self.sleep(start - now)


@dataclass
class _Run:
    settings: Settings
    clock: Clock
    bind: object  # the engine every worker opens its session on
    where: ClaimFilter
    limit: int | None
    pacer: Pacer
    sleep: Callable[[float], None]
    sign: Callable[[bytes], bytes] | None
    progress: Progress | None
    me: str = field(default_factory=lambda: f"send-{uuid.uuid4().hex[:12]}")
    report: SendReport = field(default_factory=SendReport)
    breaker: Breaker = field(default_factory=Breaker)
    lock: threading.Lock = field(default_factory=threading.Lock)
    db_lock: object = field(default_factory=nullcontext)
    templates: dict[int, MessageTemplate] = field(default_factory=dict)
    secret: bytes = b""
    connections: int = 1

    def take(self, session: Session) -> list[Claimed]:
        """The worker's next rows, or none when the run is over or stopping."""
        with self.lock:
            if self.report.stopped or self.limit == 0:
                return []
            size = max(1, CLAIM_BATCH // self.connections)
            size = size if self.limit is None else min(size, self.limit)
            with self.db_lock:
                rows = claims.claim(session, self.me, self.where, size)
            if self.limit is not None:
                self.limit -= len(rows)
            return rows

    def count(self, row: Claimed, outcome: str) -> None:
        with self.lock:
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)
        if self.progress:
            self.progress(row, outcome)

    def stop(self, reason: str) -> None:
        with self.lock:
            self.report.stopped = self.report.stopped or reason

    def template(self, session: Session, issue_id: int) -> MessageTemplate:
        with self.lock:
            if issue_id not in self.templates:
                with self.db_lock:
                    stored = session.get(IssueMessage, issue_id)
                    session.rollback()
                self.templates[issue_id] = _load(stored.template)
            return self.templates[issue_id]

    def settle(self, session: Session | Connection, row: Claimed, status: str, **values) -> None:
        with self.db_lock:
            claims.settle(session, self.me, row.id, status, **values)


def _legacy_bytes(settings: Settings, path: str, now: datetime) -> bytes | None:
    """A .eml queued before the ledger, re-dated now; None if it is gone or empty."""
    try:
        data = re.sub(rb"\r?\n", b"\r\n", (settings.home / path).read_bytes())
    except OSError:
        return None
    if not data.strip():
        return None
    data = re.sub(rb"^Date:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", b"", data, count=1, flags=re.M)
    return date_header(now) + data


def message_for(
    settings: Settings, secret: bytes, row: Claimed, template: MessageTemplate | None, now
) -> bytes | None:
    """A row's message as it leaves at `now` (None: a legacy .eml file is gone or empty)."""
    if row.path is not None:
        return _legacy_bytes(settings, row.path, now)
    if row.content is not None:
        return date_header(now) + row.content
    return for_subscriber(
        template,
        settings=settings,
        secret=secret,
        subscriber_id=row.subscriber_id,
        email=row.recipient,
        name=row.subscriber_name,
        message_id=row.message_id,
        date=now,
    )


def make_message(run: _Run, session: Session | None, row: Claimed) -> bytes | None:
    """The bytes that leave now: spliced, dated now, signed (`session`: None when the
    issue's template is loaded already, as on the worker's making thread)."""
    template = None
    if row.path is None and row.content is None:
        template = run.template(session, row.issue_id)
    now = run.clock().astimezone(run.settings.tz)
    data = message_for(run.settings, run.secret, row, template, now)
    if data is not None and run.sign:
        data = run.sign(data)
    return data


def envelope_sender(run: _Run, row: Claimed) -> str:
    """The VERP return path naming the reader and the issue (or `confirm`, `test`)."""
    tag = row.week_key if row.purpose == "issue" and row.week_key else row.purpose
    return return_path(run.secret, run.settings.bounce_address, tag, row.subscriber_id or 0)


def hand_over(run: _Run, relay: Relay, row: Claimed, data: bytes, settler: Settler) -> Answer:
    """Send once; a connection that broke is re-opened and the message sent once more."""
    sender = envelope_sender(run, row)
    run.pacer.wait()
    answer = relay.send(sender, row.recipient, data, settler.wait)
    if answer.code == 0:
        run.pacer.wait()
        answer = relay.send(sender, row.recipient, data, settler.wait)
    return answer


def deliver(
    run: _Run, session: Session, relay: Relay, row: Claimed, made: Made, settler: Settler
) -> None:
    """One held row from claim to settled status (`made`: its message, being made)."""
    reason = claims.skip_reason(row)
    if reason:
        run.settle(session, row, "skipped", tried=False, error=reason)
        return run.count(row, "skipped")
    data = made()
    if data is None:
        run.settle(session, row, "failed", tried=False, error=f"{row.path}: missing or empty")
        return run.count(row, "failed")
    answer = hand_over(run, relay, row, data, settler)
    verdict, now = classify(answer), run.clock()
    if verdict is Verdict.SENT:
        settler.later(row, "sent", sent_at=now)
        outcome = "sent"
    elif verdict is Verdict.BOUNCE:
        with run.db_lock:
            if row.subscriber_id is not None:
                claims.bounce_reader(session, row.subscriber_id, now, str(answer))
            claims.settle(session, run.me, row.id, "bounced", error=str(answer))
        outcome = "bounced"
    elif verdict is Verdict.STOP:  # the relay refuses us or the message: nobody's fault here
        run.settle(session, row, "queued", tried=False, error=str(answer))
        return run.stop(f"smtp: {relay.target}: the relay refused the message: {answer}")
    else:
        later = now + BACKOFF[min(row.attempts, len(BACKOFF) - 1)]
        settler.later(row, "deferred", error=str(answer), next_attempt_at=later)
        outcome = "deferred"
    run.count(row, outcome)
    if outcome == "bounced":
        return None
    with run.lock:
        trip, streak = run.breaker.record(outcome == "deferred"), run.breaker.consecutive
    if trip:
        run.stop(f"smtp: {relay.target}: too many failures ({streak} in a row), last: {answer}")
    elif streak:
        run.sleep(min(RUN_PAUSE_MAX, 0.1 * 2 ** (streak - 1)))  # back off the whole run


def worker(run: _Run, relay: Relay) -> None:
    """Claim, send, settle until nothing is due or the run stops; one SMTP connection."""
    with (
        run.bind.connect() as connection,
        synchronous(connection, "NORMAL"),
        Session(bind=connection, expire_on_commit=False) as session,
    ):
        settler = Settler(run.bind, run.settle)
        ahead = Ahead(
            lambda row: None if claims.skip_reason(row) else make_message(run, None, row),
            AHEAD if run.connections == 1 else 0,
        )
        try:
            while rows := run.take(session):
                for issue_id in {r.issue_id for r in rows if r.path is None and r.content is None}:
                    run.template(session, issue_id)  # loaded here: the making thread has none
                for row, made in ahead.messages(rows):
                    if run.report.stopped:
                        break
                    deliver(run, session, relay, row, made, settler)
        except RelayFault as fault:
            run.stop(str(fault))
        finally:
            try:
                ahead.close()
                settler.close()
            finally:
                relay.close()


def send_outbox(
    session: Session,
    settings: Settings,
    clock: Clock,
    limit: int | None = None,
    rate: float | None = None,
    *,
    connections: int | None = None,
    send_now: bool = False,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
    only: Sequence[int] | None = None,
) -> SendReport:
    """Send what is due (at most `limit`; only the ids in `only` if given, as for a test send
    from the desk): the one way in for the CLI, the scheduler and the desk."""
    started, sign = monotonic(), dkim_signer(settings)
    bind = session.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    with sender_lock(settings) if sqlite else nullcontext():
        where = ClaimFilter(clock(), send_now, only, take_over=sqlite)
        if dry_run:
            report = SendReport(planned=claims.due(session, where, limit))
            report.remaining = claims.count_waiting(session)
            return report
        run = _Run(
            settings, clock, bind, where, limit,
            Pacer(settings.send_rate if rate is None else rate, monotonic, sleep),
            sleep, sign, progress, secret=instance_secret(settings),
            db_lock=threading.Lock() if sqlite else nullcontext(),
        )  # fmt: skip
        run.report.expired = claims.expire_overdue(
            session, where.now, timedelta(hours=settings.max_defer)
        )
        if only is None:
            top_up(session, settings, clock)
        _run_workers(run, settings, connections or settings.send_connections)
        claims.release(session, run.me)
    report = run.report
    report.remaining = claims.count_waiting(session)
    report.seconds = monotonic() - started
    if report.stopped:
        error = RelayError(report.stopped)
        error.report = report
        raise error
    return report


def _run_workers(run: _Run, settings: Settings, connections: int) -> None:
    target = parse_smtp_url(settings.smtp_url)
    run.connections = max(1, connections)
    relays = [Relay(target, settings.smtp_timeout) for _ in range(run.connections)]
    if len(relays) == 1:
        return worker(run, relays[0])
    errors: list[BaseException] = []

    def guarded(relay: Relay) -> None:
        try:
            worker(run, relay)
        except BaseException as exc:  # re-raised in the caller's thread below
            run.stop(f"{type(exc).__name__}: {exc}")
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(r,), name="send") for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
