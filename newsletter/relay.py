"""The SMTP relay as one reused connection, how its answers are classified, and DKIM signing.

The sender (newsletter/send.py) decides what to send and keeps the ledger; this module only
speaks standard SMTP to an existing mail infrastructure (Postfix, an ESP's relay).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from newsletter.config import Settings
from newsletter.errors import SettingsError

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


class ConnectFailed(Exception):
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
            raise ConnectFailed(exc) from exc
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
    if isinstance(exc, ConnectFailed):
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
