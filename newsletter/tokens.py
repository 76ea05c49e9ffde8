"""Signed personal tokens for unsubscribe and confirm links (HMAC-SHA256, instance secret)."""

from __future__ import annotations

import base64
import hmac
from functools import lru_cache

from newsletter.errors import InputError

PURPOSES = ("unsubscribe", "confirm")
MAX_ID_DIGITS = 18  # below 2**63: every database's integer


class BadToken(InputError):
    """A token that is malformed, forged, or signed by another instance."""


@lru_cache(maxsize=4)
def keyed(secret: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 already keyed with `secret`: copying it skips re-keying per message."""
    return hmac.new(secret, digestmod="sha256")


def mac(secret: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of `message` (the outbox signs two per recipient: keep it cheap)."""
    state = keyed(secret).copy()
    state.update(message)
    return state.digest()


def _mac(secret: bytes, purpose: str, subscriber_id: int, email: str) -> str:
    digest = mac(secret, f"{purpose}:{subscriber_id}:{email.lower()}".encode())[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: bytes, purpose: str, subscriber_id: int, email: str) -> str:
    """A URL-safe token `<id>.<mac>` bound to the subscriber's id, address and purpose."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    return f"{subscriber_id}.{_mac(secret, purpose, subscriber_id, email)}"


def subscriber_id_of(token: str) -> int:
    """The id a token claims (not yet verified): used to look the subscriber up."""
    head, sep, _ = token.partition(".")
    # ASCII digits only ("²".isdigit() is true) and few of them (int() refuses 4,300 digits).
    if not sep or not (head.isascii() and head.isdigit()) or len(head) > MAX_ID_DIGITS:
        raise BadToken("token: malformed")
    return int(head)


def verify(secret: bytes, purpose: str, token: str, email: str) -> int:
    """The subscriber id if `token` was signed by this instance for that address, else BadToken."""
    subscriber_id = subscriber_id_of(token)
    expected = sign(secret, purpose, subscriber_id, email)
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise BadToken("token: signature does not match")
    return subscriber_id
