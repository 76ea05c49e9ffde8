"""Signed personal tokens for unsubscribe and confirm links (HMAC-SHA256, instance secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from newsletter.errors import InputError

PURPOSES = ("unsubscribe", "confirm")


class BadToken(InputError):
    """A token that is malformed, forged, or signed by another instance."""


def _mac(secret: bytes, purpose: str, subscriber_id: int, email: str) -> str:
    message = f"{purpose}:{subscriber_id}:{email.lower()}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: bytes, purpose: str, subscriber_id: int, email: str) -> str:
    """A URL-safe token `<id>.<mac>` bound to the subscriber's id, address and purpose."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    return f"{subscriber_id}.{_mac(secret, purpose, subscriber_id, email)}"


def subscriber_id_of(token: str) -> int:
    """The id a token claims (not yet verified): used to look the subscriber up."""
    head, sep, _ = token.partition(".")
    if not sep or not head.isdigit():
        raise BadToken("token: malformed")
    return int(head)


def verify(secret: bytes, purpose: str, token: str, email: str) -> int:
    """The subscriber id if `token` was signed by this instance for that address, else BadToken."""
    subscriber_id = subscriber_id_of(token)
    expected = sign(secret, purpose, subscriber_id, email)
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise BadToken("token: signature does not match")
    return subscriber_id
