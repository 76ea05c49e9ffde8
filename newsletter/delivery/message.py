"""Message assembly: one RFC 5322 skeleton per issue, then each recipient spliced in as bytes.

Pure: values in, bytes out. `compose` does the expensive work once per issue (header encoding,
quoted-printable encoding of every body line); the template is stored once per issue in the
ledger (`dump_template`/`load_template`). At send time `personalize` joins the pre-encoded
byte chunks, stamps `Date`, and encodes the few lines that carry the recipient's link.
Quoted-printable is line-local (a soft break never crosses a hard line break), which is what
makes the splice exact: the bytes are the ones the email package would produce for the same
text, line for line.
"""

from __future__ import annotations

import binascii
import hashlib
import html
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

from newsletter.config import Settings
from newsletter.delivery.headers import display_name, to_header
from newsletter.errors import ContentError
from newsletter.render import UNSUBSCRIBE_MARK, RenderedIssue
from newsletter.tokens import mac, sign

CRLF = b"\r\n"
LIST_NAME = "Les Jeudis de l’ODD 17"  # ’, as everywhere a reader looks
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


def compose(rendered: RenderedIssue, *, settings: Settings, issue_week: str) -> MessageTemplate:
    """The issue's message, once: headers, boundary, quoted-printable bodies with open slots.

    No Date: the sender stamps it when the message leaves (see `personalize`)."""
    for field, body in (("text", rendered.text), ("html", rendered.html)):
        if UNSUBSCRIBE_MARK not in body:
            raise ContentError(
                f"issue {issue_week}", field, f"no unsubscribe link ({UNSUBSCRIBE_MARK})"
            )
    head = [_header("From", settings.from_address)]
    if settings.reply_to:
        head.append(_header("Reply-To", settings.reply_to))
    head += [
        _header("Subject", rendered.subject),
        _header("List-Id", f"{LIST_NAME} <{settings.list_id}>"),
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF,
        b"Feedback-ID: " + feedback_id(settings, issue_week).encode("ascii") + CRLF,
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
    date: datetime,
) -> bytes:
    """The complete message for one recipient, CRLF line endings, ready for SMTP: the
    template's pre-encoded chunks joined once with the few personal ones."""
    escaped = html.escape(unsubscribe_url, quote=True)
    parts = [
        template.head,
        date_header(date),
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
    return b"".join(parts)


def for_subscriber(
    template: MessageTemplate,
    *,
    settings: Settings,
    secret: bytes,
    subscriber_id: int,
    email: str,
    name: str,
    message_id: str,
    date: datetime,
) -> bytes:
    """One subscriber's message, dated `date`: signed unsubscribe links spliced in."""
    token = sign(secret, "unsubscribe", subscriber_id, email)
    return personalize(
        template,
        recipient_email=email,
        recipient_name=name,
        message_id=message_id,
        unsubscribe_url=unsubscribe_url(settings, token),
        unsubscribe_mailto=unsubscribe_mailto(settings, token),
        date=date,
    )


def date_header(date: datetime) -> bytes:
    """`Date:` for a message leaving now (RFC 5322 form, the time zone it is given in)."""
    if date.tzinfo is None:
        raise ValueError("Date: the time must be timezone-aware")
    return b"Date: " + format_datetime(date).encode("ascii") + CRLF


def feedback_id(settings: Settings, campaign: str) -> str:
    """Gmail's Feedback-ID, campaign:list:kind:sender (the sender domain comes last)."""
    list_name = settings.list_id.split(".", 1)[0]
    return f"{campaign}:{list_name}:jeudis:{sender_domain(settings)}"


# The template as stored in issue_message.template: a magic line, then for each chunk a tag
# (B bytes, T or H a text or HTML splice) and, for bytes, a 4-byte length and the bytes.
_MAGIC = b"jeudis-template/1\n"


def dump_template(template: MessageTemplate) -> bytes:
    """The template as bytes for the ledger (no pickle: the database is shared)."""
    out = [_MAGIC]
    for chunk in (template.head, template.body_head, template.boundary.encode("ascii")):
        out += [b"B", len(chunk).to_bytes(4, "big"), chunk]
    for chunk in template.body:
        if isinstance(chunk, bytes):
            out += [b"B", len(chunk).to_bytes(4, "big"), chunk]
        else:
            out.append(b"H" if chunk.html else b"T")
    return b"".join(out)


def load_template(data: bytes) -> MessageTemplate:
    """The template `dump_template` stored; ValueError for anything else."""
    if not data.startswith(_MAGIC):
        raise ValueError("issue_message.template: not a stored message template")
    chunks: list[bytes | _Splice] = []
    view, at = memoryview(data), len(_MAGIC)
    while at < len(data):
        tag = data[at : at + 1]
        at += 1
        if tag in (b"H", b"T"):
            chunks.append(_Splice(tag == b"H"))
            continue
        if tag != b"B" or at + 4 > len(data):
            raise ValueError("issue_message.template: corrupt")
        size = int.from_bytes(view[at : at + 4], "big")
        if at + 4 + size > len(data):
            raise ValueError("issue_message.template: truncated")
        chunks.append(bytes(view[at + 4 : at + 4 + size]))
        at += 4 + size
    if len(chunks) < 3:
        raise ValueError("issue_message.template: truncated")
    head, body_head, boundary, *body = chunks
    if not all(isinstance(c, bytes) for c in (head, body_head, boundary)):
        raise ValueError("issue_message.template: corrupt")
    return MessageTemplate(head, body_head, tuple(body), boundary.decode("ascii"))


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
    msg["To"] = formataddr((display_name(to_name), to_email))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text, cte="quoted-printable")
    if html_body is not None:
        msg.add_alternative(html_body, subtype="html", cte="quoted-printable")
    return msg.as_bytes()
