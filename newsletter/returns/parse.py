"""Read one returning message into plain facts: what it is and whom it names, unverified.

Standard formats are read with the `email` package (RFC 3464 delivery status, RFC 5965
feedback reports); the non-standard bounce formats that MTAs still produce (qmail, old
Exim, Exchange, ...) are left to flufl.bounce, GNU Mailman's bounce detector. Pure: bytes
in, a frozen `Returned` out; no secret, no database. Verifying what the facts claim is
`decide.identify`'s job.
"""

from __future__ import annotations

import copy
import email
import hashlib
import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

# flufl.bounce logs a detector's crash with its traceback; _detect reports it instead.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
logging.getLogger("flufl.bounce").propagate = False

# Headers that carry the address a message was delivered to, most trustworthy first.
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")
UNSUBSCRIBE_TOKEN = re.compile(r"unsubscribe-(\d{1,12}\.[A-Za-z0-9_-]{24})(?![A-Za-z0-9_-])")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d\b")
_AUTO_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder")


class Unreadable(Exception):
    """A message that cannot be read as mail; `message_id` names it for the report."""

    def __init__(self, message_id: str, reason: str):
        self.message_id, self.reason = message_id, reason
        super().__init__(f"{message_id or '(no Message-ID)'}: {reason}")


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports: permanent (5.x.x) or temporary (4.x.x)."""

    recipient: str
    permanent: bool
    status: str = ""
    diagnostic: str = ""


@dataclass(frozen=True)
class Complaint:
    """An RFC 5965 feedback report: its type and the addresses of the original message."""

    feedback_type: str
    mail_from: str = ""
    rcpt_to: str = ""


@dataclass(frozen=True)
class Returned:
    """What a returning message says, before anything is verified."""

    message_id: str
    subject: str
    sender: str
    recipients: tuple[str, ...]  # where it was delivered: envelope headers, in order
    failures: tuple[Failure, ...] = ()
    is_bounce: bool = False
    complaint: Complaint | None = None
    auto_reply: bool = False
    returned_paths: tuple[str, ...] = ()  # Return-Path / Original-Mail-From of our message
    returned_to: tuple[str, ...] = ()  # To of our message, as returned
    returned_tokens: tuple[str, ...] = ()  # unsubscribe tokens in our message's headers
    subject_tokens: tuple[str, ...] = ()  # unsubscribe-TOKEN in the subject or a plus address


def digest(raw: bytes) -> str:
    """The identity of a message for idempotence: SHA-256 of its bytes."""
    return hashlib.sha256(raw).hexdigest()


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of raw bytes, or "" (for reports about unreadable messages)."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    found = re.search(rb"(?im)^message-id:[ \t]*(<[^>\r\n]{1,500}>)", head)
    return found.group(1).decode("ascii", "replace") if found else ""


def read(raw: bytes) -> Returned:
    """The facts of one message; Unreadable when it is not mail or its report is broken."""
    message = email.message_from_bytes(raw, policy=policy.compat32)
    message_id = message_id_of(raw)
    _check_readable(message, message_id)
    complaint, returned = _feedback(message)
    failures, is_bounce = (), False
    if complaint is None:
        failures, is_bounce, returned = _bounce(message)
    return Returned(
        message_id=message_id,
        subject=_text(message.get("Subject", "")),
        sender=parseaddr(_text(message.get("From", "")))[1].lower(),
        recipients=_envelope(message),
        failures=failures,
        is_bounce=is_bounce,
        complaint=complaint,
        auto_reply=_is_auto_reply(message),
        returned_paths=_returned_paths(returned, complaint) + _dsn_senders(message),
        returned_to=tuple(
            a for _, a in getaddresses(returned.get_all("To", []) if returned else [])
        ),
        returned_tokens=_tokens(
            " ".join(str(v) for v in (returned.get_all("List-Unsubscribe", []) if returned else []))
        ),
        subject_tokens=_tokens(
            " ".join([_text(message.get("Subject", ""))] + _raw_recipients(message))
        ),
    )


def _check_readable(message: Message, message_id: str) -> None:
    if not message.keys():
        raise Unreadable(message_id, "no mail headers")
    if not (message.get("From") or message.get("Return-Path")):
        raise Unreadable(message_id, "no From or Return-Path header")
    if message.get_content_type() == "multipart/report":
        kinds = {type(defect).__name__ for defect in message.defects}
        if not message.is_multipart() or kinds & {
            "StartBoundaryNotFoundDefect",
            "NoBoundaryInMultipartDefect",
        }:
            raise Unreadable(message_id, "a report whose parts cannot be found")


def _text(value) -> str:
    """A header value decoded to text (RFC 2047 words included)."""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError):
        return str(value)


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(UNSUBSCRIBE_TOKEN.findall(text)))


def _raw_recipients(message: Message) -> list[str]:
    """Delivery addresses as written (a plus token's case matters)."""
    found: list[str] = []
    for name in ENVELOPE_HEADERS:
        found += [address for _, address in getaddresses(message.get_all(name, [])) if address]
    return found


def _envelope(message: Message) -> tuple[str, ...]:
    return tuple(dict.fromkeys(address.lower() for address in _raw_recipients(message)))


def _returned_message(message: Message) -> Message | None:
    """Our message (or its headers) as a report returns it."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            return part.get_payload(0)
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True) or b""
            return email.message_from_bytes(payload, policy=policy.compat32)
    return None


def _returned_paths(returned: Message | None, complaint: Complaint | None) -> tuple[str, ...]:
    paths = [complaint.mail_from] if complaint and complaint.mail_from else []
    if returned is not None:
        paths += [parseaddr(value)[1] for value in returned.get_all("Return-Path", [])]
    return tuple(dict.fromkeys(path.lower() for path in paths if path))


def _feedback(message: Message) -> tuple[Complaint | None, Message | None]:
    """An ARF report (RFC 5965): its machine-readable part and the message it is about."""
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = part.get_payload(0) if part.is_multipart() else None
        if fields is None:
            fields = email.message_from_string(str(part.get_payload()), policy=policy.compat32)
        complaint = Complaint(
            feedback_type=str(fields.get("Feedback-Type", "abuse")).strip().lower(),
            mail_from=parseaddr(str(fields.get("Original-Mail-From", "")))[1].lower(),
            rcpt_to=parseaddr(str(fields.get("Original-Rcpt-To", "")))[1].lower(),
        )
        return complaint, _returned_message(message)
    return None, None


def _dsn_senders(message: Message) -> tuple[str, ...]:
    """Our envelope sender as a DSN's per-message fields repeat it (Original-Envelope-Id when
    the sender passed ENVID, Postfix's X-Postfix-Sender)."""
    found = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        fields = part.get_payload(0)
        for name in ("Original-Envelope-Id", "X-Postfix-Sender"):
            value = str(fields.get(name, "")).rpartition(";")[2].strip().strip("<>").lower()
            if "@" in value:
                found.append(value)
    return tuple(found)


def _dsn_failures(message: Message) -> list[Failure]:
    """Per-recipient fields of every message/delivery-status part (RFC 3464)."""
    failures = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload()[1:]:
            action = str(block.get("Action", "")).strip().lower()
            if not action.startswith(("failed", "delayed", "error")):
                continue  # delivered, relayed, expanded: nothing went wrong
            recipient = _dsn_address(block)
            status_match = _STATUS.search(str(block.get("Status", "")))
            status = status_match.group(0) if status_match else ""
            permanent = status.startswith("5") if status else not action.startswith("delayed")
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            failures.append(Failure(recipient, permanent, status, diagnostic))
    return failures


def _dsn_address(block: Message) -> str:
    for name in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
        value = str(block.get(name, ""))
        _, _, address = value.partition(";")
        address = address.strip().strip("<>").lower()
        if address:
            return address
    return ""


def _bounce(message: Message) -> tuple[tuple[Failure, ...], bool, Message | None]:
    """Failures from a standard DSN, else from flufl.bounce's detectors for the others."""
    is_dsn = message.get_content_type() == "multipart/report" and (
        message.get_param("report-type", "").lower() == "delivery-status"
    )
    failures = _dsn_failures(message)
    if not failures and not is_dsn and not _is_auto_reply(message):
        temporary, permanent = _detect(message)
        note = _diagnostic_line(message)
        failures = [Failure(a.decode(), True, "", note) for a in sorted(permanent)] + [
            Failure(a.decode(), False, "", note) for a in sorted(temporary - permanent)
        ]
    returned = _returned_message(message) if (failures or is_dsn) else None
    return tuple(failures), bool(failures) or is_dsn, returned


def _detect(message: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """flufl.bounce's (temporary, permanent) addresses; Unreadable if a detector crashes."""
    if not message.get("From"):
        # flufl.bounce 6.0's Yale detector indexes the From header's first address.
        message = copy.copy(message)
        message["From"] = "MAILER-DAEMON"
    try:
        return all_failures(message)
    except Exception as exc:  # a third-party heuristic: any failure is "cannot read"
        message_id = str(message.get("Message-ID", "")).strip()
        raise Unreadable(message_id, f"bounce detectors failed ({exc!r})") from None


def _diagnostic_line(message: Message) -> str:
    """The first line of a non-standard bounce's text that carries an SMTP reply code."""
    for part in message.walk():
        if part.get_content_type() != "text/plain":
            continue
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
        for line in text.splitlines():
            if _SMTP_CODE.search(line):
                return " ".join(line.split())[:300]
    return _text(message.get("Subject", ""))[:300]


def _is_auto_reply(message: Message) -> bool:
    """RFC 3834 Auto-Submitted, and the headers vacation programs add instead."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return True
    if str(message.get("Precedence", "")).strip().lower() in _AUTO_PRECEDENCE:
        return True
    return any(message.get(name) for name in _AUTO_HEADERS)
