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
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlmodel import Session, col, func, select

from newsletter.config import Settings
from newsletter.errors import JeudisError, SettingsError
from newsletter.models import Delivery, Subscriber
from newsletter.subscribers import set_status
from newsletter.weeks import Clock

RETRY_ATTEMPTS = 4  # tries per message per run
RETRY_BASE_DELAY = 1.0  # seconds; doubled after each temporary failure
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
# Signed with DKIM when present; List-Unsubscribe(-Post) must be covered (RFC 8058 §4).
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
)


class RelayError(JeudisError):
    """The relay cannot be reached or refuses us (not a reader's fault): the run stops."""

    report: SendReport | None = None  # what the run did before it stopped


# ---------------------------------------------------------------- the relay


@dataclass(frozen=True)
class SmtpTarget:
    """Where to deliver, from `smtp_url`: smtp://, smtp+starttls:// or smtps://, user:pass@."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str = field(default="", repr=False)

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse `smtp_url`; credentials are URL-decoded (`p%40ss` is `p@ss`)."""
    parts = urlsplit(url.strip())
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if parts.scheme not in DEFAULT_PORTS:
        raise SettingsError(
            f"smtp_url: {shown!r} must start with smtp://, smtp+starttls:// or smtps://"
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise SettingsError(f"smtp_url: {shown!r} has an invalid port") from None
    if not parts.hostname:
        raise SettingsError(f"smtp_url: {shown!r} has no host")
    username = unquote(parts.username) if parts.username else None
    return SmtpTarget(parts.scheme, parts.hostname, port, username, unquote(parts.password or ""))


class _ConnectFailed(Exception):
    """Could not open a session with the relay (wraps the cause)."""


class Relay:
    """One SMTP connection, opened on first use, reused, and re-opened after a drop."""

    def __init__(self, target: SmtpTarget, timeout: float):
        self.target, self.timeout = target, timeout
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        target, context = self.target, ssl.create_default_context()
        name = socket.gethostname()  # getfqdn() can stall on reverse DNS
        try:
            if target.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(
                    target.host,
                    target.port,
                    local_hostname=name,
                    timeout=self.timeout,
                    context=context,
                )
            else:
                smtp = smtplib.SMTP(
                    target.host, target.port, local_hostname=name, timeout=self.timeout
                )
            smtp.ehlo()
            if target.scheme == "smtp+starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if target.username:
                smtp.login(target.username, target.password)
        except (ssl.SSLError, smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError):
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise _ConnectFailed(exc) from exc
        return smtp

    def send(self, sender: str, recipient: str, data: bytes) -> None:
        """Hand one message to the relay; raises smtplib's exceptions as they come."""
        if self.smtp is None:
            self.smtp = self._connect()
        try:
            self.smtp.sendmail(sender, [recipient], data)
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                self.close()
            raise
        except smtplib.SMTPRecipientsRefused:
            raise
        except (OSError, smtplib.SMTPException):
            self.close()  # the connection's state is unknown: start afresh
            raise

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def describe(exc: BaseException) -> str:
    """One line for last_error: the relay's code and words, or the exception."""
    if isinstance(exc, _ConnectFailed):
        return f"connect: {describe(exc.args[0])}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return f"{code} {_text(text)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


def classify(exc: BaseException) -> str:
    """'temporary' (retry later), 'permanent' (bounce the reader) or 'fatal' (stop the run)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return "permanent" if codes and all(code >= 500 for code in codes) else "temporary"
    if isinstance(
        exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError, ssl.SSLError)
    ):
        return "fatal"
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_code < 500:
            return "temporary"
        return "permanent" if isinstance(exc, smtplib.SMTPDataError) else "fatal"
    return "temporary"  # dropped connection, timeout, refused connection


# ---------------------------------------------------------------- signing and pacing


def dkim_signer(settings: Settings) -> Callable[[bytes], bytes] | None:
    """A function adding a DKIM-Signature, or None when DKIM is not configured."""
    wanted = {
        "dkim_key_file": settings.dkim_key_file,
        "dkim_selector": settings.dkim_selector,
        "dkim_domain": settings.dkim_domain,
    }
    if not any(wanted.values()):
        return None
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise SettingsError(f"{missing[0]}: required when any dkim_* setting is set")
    import dkim

    path = Path(settings.dkim_key_file)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"dkim_key_file: {path}: {exc.strerror}") from None
    selector, domain = settings.dkim_selector.encode(), settings.dkim_domain.encode()

    def sign(data: bytes) -> bytes:
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        present = [
            h.encode()
            for h in SIGNED_HEADERS
            if head.startswith(h.encode() + b":") or b"\r\n" + h.encode() + b":" in head
        ]
        try:
            signature = dkim.sign(data, selector, domain, key, include_headers=present)
        except dkim.DKIMException as exc:
            raise SettingsError(f"dkim_key_file: {path}: cannot sign ({exc})") from None
        return signature + data

    return sign


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
            except (OSError, smtplib.SMTPException, _ConnectFailed) as exc:
                last = exc
                kind = classify(exc.args[0] if isinstance(exc, _ConnectFailed) else exc)
                if kind == "fatal":
                    self.finish(delivery, "queued", describe(exc))
                    raise RelayError(f"smtp: {self.relay.target}: {describe(exc)}") from None
                if kind == "permanent":
                    return self.bounce(delivery, subscriber, describe(exc))
                delivery.last_error = describe(exc)
                continue
            return self.finish(delivery, "sent")
        self.finish(delivery, "queued", describe(last))
        if isinstance(last, _ConnectFailed):  # the relay is down: every message would wait
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
