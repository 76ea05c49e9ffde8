"""Where returning mail is read from: one message on stdin, a Maildir, an IMAP mailbox.

A message is moved or flagged only after its effects are committed, so a crash in between
means it is read again next time, which changes nothing (see `apply.take_in`). Messages
kept for a person stay unread (and flagged) where a mail client shows them.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlmodel import Session

from newsletter.config import Settings
from newsletter.db import open_session
from newsletter.errors import InputError, JeudisError
from newsletter.returns.apply import Outcome, take_in
from newsletter.weeks import Clock

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What one run read: the outcomes, counted by kind, the duplicates apart."""

    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        return outcome

    @property
    def counts(self) -> Counter:
        return Counter(o.kind for o in self.outcomes if not o.duplicate)

    @property
    def duplicates(self) -> int:
        return sum(o.duplicate for o in self.outcomes)

    def line(self) -> str:
        parts = [f"{kind}: {n}" for kind, n in sorted(self.counts.items())]
        parts.append(f"already read: {self.duplicates}")
        return f"read {len(self.outcomes)} message(s); " + ", ".join(parts)


def read_one(session: Session, settings: Settings, clock: Clock, raw: bytes) -> Summary:
    """One message, as an MTA's pipe transport or a `.forward` hands it over."""
    summary = Summary()
    summary.add(take_in(session, settings, clock, raw, "stdin"))
    return summary


# ---------------------------------------------------------------- Maildir


def _maildir_name(name: str, flags: str) -> str:
    """`name` with its Maildir info set to `flags` (`unique:2,FLAGS`)."""
    return f"{name.split(':', 1)[0]}:2,{flags}"


def read_maildir(session: Session, settings: Settings, clock: Clock, folder: Path) -> Summary:
    """Every message in `folder/new`, then moved to `cur/`: seen, or unseen and flagged (F)
    when it is kept for a person."""
    new, cur = Path(folder) / "new", Path(folder) / "cur"
    if not new.is_dir():
        raise InputError(f"--maildir: {folder}: not a Maildir (no new/ folder)")
    cur.mkdir(exist_ok=True)
    summary = Summary()
    for path in sorted(new.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        outcome = summary.add(take_in(session, settings, clock, path.read_bytes(), "maildir"))
        flags = "F" if outcome.action == "keep" else "S"
        os.replace(path, cur / _maildir_name(path.name, flags))
    return summary


# ---------------------------------------------------------------- IMAP


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    user: str
    password: str
    folder: str
    tls: bool


def parse_imap_url(url: str) -> ImapTarget:
    """`imaps://user:password@host[:port]/FOLDER` (or imap:// on loopback tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise InputError(f"inbound_imap_url: {url!r} is not imap[s]://user:password@host/FOLDER")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError:
        raise InputError(f"inbound_imap_url: {url!r}: bad port") from None
    return ImapTarget(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=parts.scheme == "imaps",
    )


def _imap_connect(target: ImapTarget, timeout: float) -> imaplib.IMAP4:
    try:
        kind = imaplib.IMAP4_SSL if target.tls else imaplib.IMAP4
        client = kind(target.host, target.port, timeout=timeout)
        client.login(target.user, target.password)
        status, _ = client.select(_quote(target.folder))
    except (OSError, imaplib.IMAP4.error) as exc:
        raise JeudisError(f"imap: {target.host}:{target.port}: {exc}") from None
    if status != "OK":
        raise JeudisError(f"imap: {target.host}:{target.port}: no folder {target.folder!r}")
    return client


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unseen(client: imaplib.IMAP4) -> Iterable[bytes]:
    status, data = client.uid("SEARCH", None, "UNSEEN")
    if status != "OK":
        raise JeudisError(f"imap: search failed: {data!r}")
    return (data[0] or b"").split()


def _fetch(client: imaplib.IMAP4, uid: bytes) -> bytes | None:
    status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    for item in data if status == "OK" else []:
        if isinstance(item, tuple) and re.search(rb"BODY\[\]", item[0]):
            return item[1]
    return None


def read_imap(session: Session, settings: Settings, clock: Clock, url: str) -> Summary:
    """Every unseen message of the folder; then marked seen, or left unseen and flagged when
    it is kept for a person (so the next run does not count it again: see `take_in`)."""
    target = parse_imap_url(url)
    client = _imap_connect(target, settings.smtp_timeout)
    summary = Summary()
    try:
        for uid in list(_unseen(client)):
            raw = _fetch(client, uid)
            if raw is None:
                continue
            outcome = summary.add(take_in(session, settings, clock, raw, f"imap:{target.host}"))
            flag = "\\Flagged" if outcome.action == "keep" else "\\Seen"
            client.uid("STORE", uid, "+FLAGS", f"({flag})")
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()
    return summary


def poll(settings: Settings, clock: Clock) -> Summary | None:
    """The scheduler's job: read the configured mailbox (inbound_maildir, inbound_imap_url)."""
    if not (settings.inbound_maildir or settings.inbound_imap_url):
        return None
    try:
        with open_session(settings) as session:
            if settings.inbound_maildir:
                summary = read_maildir(session, settings, clock, Path(settings.inbound_maildir))
            else:
                summary = read_imap(session, settings, clock, settings.inbound_imap_url)
    except JeudisError as exc:
        log.error("inbound: %s", exc)
        return None
    log.info("inbound: %s", summary.line())
    return summary
