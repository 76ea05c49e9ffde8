"""What to do with a returning message: pure and table-driven, like newsletter/pick.py.

`identify` verifies whom the message is about (the signed VERP return path first, then a
signed unsubscribe token, then the address a bounce or a complaint reports); `decide` looks
the message's kind up in RULES. A VERP address or a token that fails its signature check
makes the message `forged`: it changes nobody and is kept for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from newsletter import tokens
from newsletter.returnpath import read_return_path
from newsletter.returns.parse import Failure, Returned

# kind -> (action when the reader is known, action when nobody could be identified)
RULES: dict[str, tuple[str, str]] = {
    "hard_bounce": ("bounce", "keep"),
    "soft_bounce": ("count", "keep"),
    "complaint": ("unsubscribe", "keep"),
    "unsubscribe": ("unsubscribe", "keep"),
    "forged": ("keep", "keep"),
    "auto_reply": ("ignore", "ignore"),
    "notice": ("ignore", "ignore"),  # a DSN that reports success ("relayed", "delivered")
    "other": ("keep", "keep"),
    "unreadable": ("keep", "keep"),
}
KINDS = tuple(RULES)


class Reader(Protocol):
    id: int | None
    email: str
    status: str


class Readers(Protocol):
    """What `identify` reads: subscribers by id and by (normalised) address."""

    def by_id(self, subscriber_id: int) -> Reader | None: ...

    def by_email(self, email: str) -> Reader | None: ...


@dataclass(frozen=True)
class Who:
    """The verified reader a message is about (or None), the issue's week, and how we know."""

    reader: Reader | None = None
    week: str | None = None
    how: str = ""  # verp, token, address
    forged: bool = False


@dataclass(frozen=True)
class Decision:
    kind: str
    action: str  # bounce, count, unsubscribe, ignore, keep
    subscriber_id: int | None
    week: str | None
    detail: str


def _is_verp(address: str, bounce_address: str) -> bool:
    base = bounce_address.rpartition("@")[0].lower()
    return address.lower().startswith(f"{base}+")


def _by_verp(returned: Returned, secret: bytes, readers: Readers, bounce_address: str) -> Who:
    tried = False
    for address in (*returned.recipients, *returned.returned_paths):
        if not _is_verp(address, bounce_address):
            continue
        tried = True
        path = read_return_path(secret, address)
        if path is not None:
            reader = readers.by_id(path.subscriber_id)
            return Who(reader, path.week, "verp") if reader else Who()
    return Who(forged=tried)


def _by_token(candidates: Sequence[str], secret: bytes, readers: Readers) -> Who:
    for token in candidates:
        reader = readers.by_id(tokens.subscriber_id_of(token))
        if reader is None:
            continue
        try:
            tokens.verify(secret, "unsubscribe", token, reader.email)
        except tokens.BadToken:
            continue
        return Who(reader, None, "token")
    return Who(forged=bool(candidates))


def _by_address(addresses: Sequence[str], readers: Readers) -> Who:
    for address in addresses:
        reader = readers.by_email(address.lower()) if address else None
        if reader is not None:
            return Who(reader, None, "address")
    return Who()


def identify(returned: Returned, secret: bytes, readers: Readers, bounce_address: str) -> Who:
    """The verified reader: VERP, then signed tokens, then the addresses the report names."""
    if returned.complaint is None and not returned.is_bounce:
        return _by_token(returned.subject_tokens, secret, readers)
    who = _by_verp(returned, secret, readers, bounce_address)
    if who.reader is not None or who.forged:
        return who
    by_token = _by_token(returned.returned_tokens, secret, readers)
    if by_token.reader is not None or by_token.forged:
        return by_token
    if returned.complaint is not None:
        reported = (returned.complaint.rcpt_to, *returned.returned_to)
    else:
        reported = tuple(failure.recipient for failure in returned.failures)
    return _by_address(reported, readers)


def _failure(returned: Returned, who: Who) -> Failure | None:
    """The failure about our reader (the permanent one first), or the first one reported."""
    if not returned.failures:
        return None
    ranked = sorted(returned.failures, key=lambda failure: not failure.permanent)
    email = who.reader.email if who.reader else ""
    return next((f for f in ranked if f.recipient == email), ranked[0])


def kind_of(returned: Returned, who: Who) -> str:
    """The message's kind (a key of RULES)."""
    if who.forged:
        return "forged"
    if returned.complaint is not None:
        return "complaint"
    if returned.is_bounce:
        failure = _failure(returned, who)
        if failure is None:
            return "notice"
        return "hard_bounce" if failure.permanent else "soft_bounce"
    if returned.subject_tokens:
        return "unsubscribe"
    return "auto_reply" if returned.auto_reply else "other"


def _detail(kind: str, returned: Returned, who: Who) -> str:
    failure = _failure(returned, who)
    if failure is not None and kind in ("hard_bounce", "soft_bounce"):
        words = " ".join(part for part in (failure.status, failure.diagnostic) if part)
        return f"{kind.replace('_', ' ')}: {words or 'no diagnostic'}"[:500]
    if kind == "complaint" and returned.complaint is not None:
        return f"complaint ({returned.complaint.feedback_type})"
    if kind == "unsubscribe":
        return "unsubscribe request by mail"
    if kind == "forged":
        return "a signed address or token that does not verify"
    return returned.subject[:200]


def decide(returned: Returned, who: Who) -> Decision:
    """The action RULES give for this message and its verified reader."""
    kind = kind_of(returned, who)
    known, unknown = RULES[kind]
    reader_id = who.reader.id if who.reader is not None else None
    action = known if reader_id is not None else unknown
    return Decision(kind, action, reader_id, who.week, _detail(kind, returned, who))


def consecutive(weeks_sent: Sequence[str], soft_weeks: set[str]) -> int:
    """How many of the reader's latest issues (newest first) each had a soft bounce."""
    count = 0
    for week in weeks_sent:
        if week not in soft_weeks:
            break
        count += 1
    return count
