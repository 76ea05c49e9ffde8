"""Message assembly: one RFC 5322 skeleton per issue, then each recipient spliced in as bytes.

Pure: values in, bytes out. `compose` does the expensive work once per issue (header encoding,
quoted-printable encoding of every body line); `personalize` only joins pre-encoded byte chunks
and encodes the few lines that carry the recipient's unsubscribe link. Quoted-printable is
line-local (a soft break never crosses a hard line break), which is what makes the splice exact:
the bytes are the ones the email package would produce for the same text, line for line.
"""

from __future__ import annotations

import binascii
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

from newsletter.config import Settings
from newsletter.errors import ContentError
from newsletter.render import UNSUBSCRIBE_MARK, RenderedIssue
from newsletter.tokens import mac, sign

CRLF = b"\r\n"
LIST_NAME = "Les Jeudis de l'ODD 17"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# refold_source="all": without it a short non-ASCII value would be left raw, not RFC 2047.
_FOLD = policy.SMTP.clone(max_line_length=78, refold_source="all")


@dataclass(frozen=True)
class _Splice:
    """Where UNSUBSCRIBE_MARK stood: the recipient's URL goes here, escaped in the HTML part.

    The text around it is pre-encoded and ends in a soft line break, so only the URL itself
    is encoded per recipient (QP soft breaks vanish when decoded)."""

    html: bool


@dataclass(frozen=True)
class MessageTemplate:
    """An issue's message with the per-recipient fields left open (see `personalize`)."""

    head: bytes  # every header that is the same for all recipients
    body_head: bytes  # Content-Type of the whole message, blank line, first boundary
    body: tuple[bytes | _Splice, ...]  # pre-encoded chunks and the lines to splice
    boundary: str


def _header(name: str, value: str) -> bytes:
    """One header, RFC 2047-encoded where needed and folded with CRLF (done once per issue)."""
    return _FOLD.fold(name, value).encode("ascii")


def _qp(text: str) -> bytes:
    """Quoted-printable for CRLF-terminated UTF-8 text (C implementation, soft breaks at 76)."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True)


def _lines(text: str) -> list[str]:
    """Hard lines of a body, whatever its line endings; the last one is terminated too."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return text[:-1].split("\n")


def _encode_part(text: str, *, html_part: bool) -> list[bytes | _Splice]:
    """Pre-encode everything but the marks: runs of plain lines as single chunks, and the text
    around each mark as chunks ending in a soft line break."""
    out: list[bytes | _Splice] = []
    run: list[str] = []
    for line in _lines(text):
        if UNSUBSCRIBE_MARK not in line:
            run.append(line)
            continue
        if run:
            out.append(_qp("\r\n".join(run) + "\r\n"))
            run = []
        *pieces, last = line.split(UNSUBSCRIBE_MARK)
        for piece in pieces:
            out += [_soft_break(piece), _Splice(html_part)]
        out.append(_qp(last + "\r\n"))
    if run:
        out.append(_qp("\r\n".join(run) + "\r\n"))
    return out


def _soft_break(text: str) -> bytes:
    """Quoted-printable for text with no line break of its own, ended by a soft line break;
    every line stays within 76 characters and no =XX escape is split."""
    # Without a CRLF in its input b2a_qp breaks soft lines with a bare LF: make them CRLF.
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"=\n", b"=\r\n")
    head, _, last = encoded.rpartition(b"\r\n")
    if len(last) > 75:
        cut = 75
        while b"=" in last[cut - 2 : cut]:
            cut -= 1
        last = last[:cut] + b"=\r\n" + last[cut:]
    return (head + b"\r\n" if head else b"") + last + b"=\r\n"


def _boundary(issue_week: str, rendered: RenderedIssue) -> str:
    # "=_" never occurs in quoted-printable output ("=" is always =3D or a soft break), so the
    # boundary cannot collide with a part; the hash keeps rebuilds byte-identical.
    digest = hashlib.sha256(f"{issue_week}\0{rendered.html}\0{rendered.text}".encode()).hexdigest()
    return f"=_jeudis_{digest[:24]}"


def compose(
    rendered: RenderedIssue, *, settings: Settings, issue_week: str, date: datetime
) -> MessageTemplate:
    """The issue's message, once: headers, boundary, quoted-printable bodies with open slots."""
    for field, body in (("text", rendered.text), ("html", rendered.html)):
        if UNSUBSCRIBE_MARK not in body:
            raise ContentError(
                f"issue {issue_week}", field, f"no unsubscribe link ({UNSUBSCRIBE_MARK})"
            )
    if date.tzinfo is None:
        raise ValueError("compose: date must be timezone-aware")
    head = [_header("From", settings.from_address)]
    if settings.reply_to:
        head.append(_header("Reply-To", settings.reply_to))
    head += [
        _header("Subject", rendered.subject),
        b"Date: " + format_datetime(date).encode("ascii") + CRLF,
        _header("List-Id", f"{LIST_NAME} <{settings.list_id}>"),
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF,
        b"MIME-Version: 1.0" + CRLF,
    ]
    boundary = _boundary(issue_week, rendered)
    delimiter = b"--" + boundary.encode("ascii")
    body_head = (
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"'.encode("ascii")
        + CRLF * 2
        + delimiter
        + CRLF
    )
    body: list[bytes | _Splice] = [_part_headers("plain")]
    body += _encode_part(rendered.text, html_part=False)
    # The CRLF before a delimiter belongs to the delimiter (RFC 2046), so each part keeps the
    # final line break of its text, as the email package writes it.
    body.append(CRLF + delimiter + CRLF + _part_headers("html"))
    body += _encode_part(rendered.html, html_part=True)
    body.append(CRLF + delimiter + b"--" + CRLF)
    return MessageTemplate(b"".join(head), body_head, tuple(_merge(body)), boundary)


def _part_headers(subtype: str) -> bytes:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8".encode("ascii")
        + CRLF
        + b"Content-Transfer-Encoding: quoted-printable"
        + CRLF * 2
    )


def _merge(chunks: list[bytes | _Splice]) -> list[bytes | _Splice]:
    """Join neighbouring byte chunks so personalize does as few joins as possible."""
    out: list[bytes | _Splice] = []
    for chunk in chunks:
        if isinstance(chunk, bytes) and out and isinstance(out[-1], bytes):
            out[-1] += chunk
        else:
            out.append(chunk)
    return out


def personalize(
    template: MessageTemplate,
    *,
    recipient_email: str,
    recipient_name: str,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
) -> bytes:
    """The complete message for one recipient, CRLF line endings, ready for SMTP."""
    return b"".join(
        personalized_chunks(
            template,
            recipient_email=recipient_email,
            recipient_name=recipient_name,
            message_id=message_id,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_mailto=unsubscribe_mailto,
        )
    )


def personalized_chunks(
    template: MessageTemplate,
    *,
    recipient_email: str,
    recipient_name: str,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
) -> list[bytes]:
    """The same message as a list of byte chunks, mostly the template's own: the outbox hands
    them to os.writev, so the large shared chunks are never copied per recipient in Python."""
    escaped = html.escape(unsubscribe_url, quote=True)
    parts = [
        template.head,
        to_header(recipient_name, recipient_email),
        b"Message-ID: " + message_id.encode("ascii") + CRLF,
        # Folded after the comma: both URLs stay whole and the line stays short.
        f"List-Unsubscribe: <{unsubscribe_url}>,\r\n <{unsubscribe_mailto}>\r\n".encode("ascii"),
        template.body_head,
    ]
    for chunk in template.body:
        if isinstance(chunk, bytes):
            parts.append(chunk)
        else:
            parts.append(_soft_break(escaped if chunk.html else unsubscribe_url))
    return parts


def for_subscriber(
    template: MessageTemplate,
    *,
    settings: Settings,
    secret: bytes,
    issue_week: str,
    subscriber_id: int,
    email: str,
    name: str,
) -> tuple[str, list[bytes]]:
    """(Message-ID, message chunks) for one subscriber: signed unsubscribe links spliced in."""
    token = sign(secret, "unsubscribe", subscriber_id, email)
    message_id = message_id_for(issue_week, subscriber_id, sender_domain(settings), secret=secret)
    data = personalized_chunks(
        template,
        recipient_email=email,
        recipient_name=name,
        message_id=message_id,
        unsubscribe_url=unsubscribe_url(settings, token),
        unsubscribe_mailto=unsubscribe_mailto(settings, token),
    )
    return message_id, data


# RFC 2047 "Q" encoding for a phrase: only these stand for themselves (section 5, rule 3).
_Q_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q = [chr(b) if b in _Q_PLAIN else "_" if b == 0x20 else f"={b:02X}" for b in range(256)]
_Q_MAX = 60  # payload per encoded-word: with "=?utf-8?q?" and "?=" a word is at most 72
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")


def _q(text: str) -> str:
    return "".join(map(_Q.__getitem__, text.encode("utf-8")))


def _q_words(run: str) -> list[str]:
    """A run of words as encoded-words; a split falls after a space where it can, and never
    inside a character (the space stays inside the first word: whitespace between two
    encoded-words is not text, RFC 2047 section 6.2)."""
    words, current = [], ""
    for token in run.split(" "):
        piece = _q(token) if not current else "_" + _q(token)
        if current and len(current) + len(piece) > _Q_MAX:
            words.append(current + "_")
            current, piece = "", _q(token)
        if len(piece) > _Q_MAX:  # one giant token: cut between characters
            for char in token:
                part = _q(char)
                if len(current) + len(part) > _Q_MAX:
                    words.append(current)
                    current = ""
                current += part
            continue
        current += piece
    words.append(current)
    return [f"=?utf-8?q?{word}?=" for word in words]


def _phrase(name: str) -> list[str]:
    """A display name as atoms and encoded-words: plain words stay readable."""
    out: list[str] = []
    run: list[str] = []
    for token in name.split(" "):
        if _ATOM.fullmatch(token) and "=?" not in token:
            if run:
                out += _q_words(" ".join(run))
                run = []
            out.append(token)
        else:
            run.append(token)
    if run:
        out += _q_words(" ".join(run))
    return out


def to_header(name: str, email: str) -> bytes:
    """`To:` with the display name quoted or RFC 2047-encoded, folded with CRLF under 78."""
    if _CONTROL.search(email) or " " in email or "@" not in email:
        raise ValueError(f"recipient: {email!r} is not a usable address")
    name = " ".join(_CONTROL.sub(" ", name).split())
    if not name:
        return f"To: {email}\r\n".encode()
    # The address stays as is (a non-ASCII address needs SMTPUTF8 from the relay anyway).
    if name.isascii() and len(name) + len(email) < 60:
        return f"To: {formataddr((name, email))}\r\n".encode()
    lines, line = [], "To:"
    for word in [*_phrase(name), f"<{email}>"]:
        if len(line) + 1 + len(word) > 78 and line != "To:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode()


def message_id_for(issue_week: str, subscriber_id: int, domain: str, *, secret: bytes = b"") -> str:
    """Deterministic per (issue, subscriber): a rebuild can never mint a second, different id."""
    digest = mac(secret, f"{issue_week}:{subscriber_id}".encode())
    return f"<{issue_week}.{subscriber_id}.{digest.hex()[:12]}@{domain}>"


def sender_domain(settings: Settings) -> str:
    """The domain of the From address, used on the right of Message-IDs."""
    return _domain_of(settings.from_address)


@lru_cache(maxsize=8)
def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def unsubscribe_url(settings: Settings, token: str) -> str:
    """The one-click (RFC 8058) and clickable unsubscribe link."""
    return f"{settings.base_url.rstrip('/')}/unsubscribe/{token}"


def unsubscribe_mailto(settings: Settings, token: str) -> str:
    """The mailto: form of List-Unsubscribe; the token rides in the subject."""
    return f"mailto:{settings.unsubscribe_mailto}?subject=unsubscribe-{token}"


# One-off messages (a test send, a notice): rare, so the email package builds them whole.


def compose_simple(
    *,
    settings: Settings,
    to_email: str,
    to_name: str,
    subject: str,
    text: str,
    html_body: str | None,
    date: datetime,
    message_id: str,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A single message built by the email package (text, plus an HTML alternative if given)."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = settings.from_address
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["To"] = formataddr((" ".join(_CONTROL.sub(" ", to_name).split()), to_email))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text, cte="quoted-printable")
    if html_body is not None:
        msg.add_alternative(html_body, subtype="html", cte="quoted-printable")
    return msg.as_bytes()
