"""The SMTP relay as one reused connection per worker.

The runner (delivery/send.py) decides what to send and keeps the ledger; this module only
speaks standard SMTP to an existing mail infrastructure (Postfix, an ESP's relay) and says
what the relay answered, at which stage (delivery/classify.py reads it).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from newsletter.delivery.classify import Answer
from newsletter.errors import SettingsError

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
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


def _nothing() -> None:
    return None


class RelayFault(Exception):
    """The relay cannot be used at all (unreachable, TLS, login): no message can go."""


class Relay:
    """One SMTP connection, opened on first use, reused, and re-opened after a drop."""

    def __init__(self, target: SmtpTarget, timeout: float):
        self.target, self.timeout = target, timeout
        self.smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        target, name = self.target, socket.gethostname()  # getfqdn() can stall on reverse DNS
        if target.scheme == "smtps":
            context = ssl.create_default_context()
            return smtplib.SMTP_SSL(
                target.host, target.port, local_hostname=name, timeout=self.timeout,
                context=context,
            )  # fmt: skip
        return smtplib.SMTP(target.host, target.port, local_hostname=name, timeout=self.timeout)

    def _connect(self) -> smtplib.SMTP:
        try:
            smtp = self._open()
            # Commands are small writes after a large one (the previous message): without
            # this, Nagle's algorithm holds them until the relay's delayed ACK comes back.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.target.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.target.username:
                smtp.login(self.target.username, self.target.password)
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayFault(f"smtp: {self.target}: connect: {describe(exc)}") from None
        return smtp

    def send(
        self, sender: str, recipient: str, data: bytes, before_data: Callable[[], None] = _nothing
    ) -> Answer:
        """Hand one message to the relay: its answer, and where it came (RelayFault if the
        relay cannot be reached or refuses the session itself). `before_data` runs just
        before DATA (the sender finishes writing the previous message's row there)."""
        if self.smtp is None:
            self.smtp = self._connect()
        smtp, stage = self.smtp, "mail"
        try:
            code, text = smtp.mail(sender)
            if code == 250:
                stage = "rcpt"
                code, text = smtp.rcpt(recipient)
            if code in (250, 251):
                stage = "data"
                before_data()
                code, text = _data(smtp, data)
        except smtplib.SMTPResponseException as exc:  # DATA refused before the message went
            code, text = exc.smtp_code, exc.smtp_error
        except (OSError, smtplib.SMTPException) as exc:
            self.close()  # the connection's state is unknown: start afresh
            return Answer(stage, 0, describe(exc))
        answer = Answer(stage, code, _text(text))
        if code == 421:
            self.close()
        elif not 200 <= code < 300:
            self._reset()
        return answer

    def _reset(self) -> None:
        try:
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _data(smtp: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
    """smtplib's DATA, with the dot-stuffing done by bytes.replace: smtplib's regular
    expression takes 0.5 ms for an issue of 64 KB, as long as the rest of the message's
    work on a fast relay."""
    code, text = smtp.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, text)
    stuffed = data.replace(b"\n.", b"\n..")  # the same lines as smtplib's (?m)^\.
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    smtp.send(stuffed + b".\r\n")
    return smtp.getreply()


def describe(exc: BaseException) -> str:
    """One line for an error: the relay's code and words, or the exception."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())
