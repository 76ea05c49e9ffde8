"""VERP return paths: the envelope sender names the reader and the issue, signed.

`bounces+2026-w48.42.3f9c0a1b2c3d4e5f@bounce.example.org`: a bounce addressed to it names
subscriber 42 and issue 2026-W48 even when the DSN itself is mangled. Lower-case hex only,
since some MTAs fold the case of local parts. Pure: values in, values out.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from newsletter.tokens import mac

_TAG = re.compile(r"^[a-z0-9-]{1,16}$")
_LOCAL = re.compile(
    r"^(?P<base>[^+@]+)\+(?P<tag>[a-z0-9-]{1,16})\.(?P<id>[0-9]{1,12})\.(?P<mac>[0-9a-f]{16})$"
)


@dataclass(frozen=True)
class ReturnPath:
    """Who a returning message is about: the subscriber and the tag (a week key, `confirm`, ...)."""

    subscriber_id: int
    tag: str

    @property
    def week(self) -> str | None:
        """The issue's week key (`2026-W48`) when the tag is one, else None."""
        if re.fullmatch(r"\d{4}-w\d{2}", self.tag):
            return self.tag.upper()
        return None


def _digest(secret: bytes, tag: str, subscriber_id: int) -> str:
    return mac(secret, f"bounce:{tag}:{subscriber_id}".encode()).hex()[:16]


def return_path(secret: bytes, bounce_address: str, tag: str, subscriber_id: int) -> str:
    """The envelope sender for one message: `local+TAG.ID.MAC@domain`."""
    tag = tag.lower()
    if not _TAG.match(tag):
        raise ValueError(f"return path tag: {tag!r}")
    local, _, domain = bounce_address.rpartition("@")
    if not local or not domain:
        raise ValueError(f"bounce_address: {bounce_address!r} is not an address")
    return f"{local}+{tag}.{subscriber_id}.{_digest(secret, tag, subscriber_id)}@{domain}"


def read_return_path(secret: bytes, address: str) -> ReturnPath | None:
    """The verified subscriber and tag of a VERP address, or None if absent, forged or tampered."""
    local, _, _domain = address.strip().strip("<>").rpartition("@")
    found = _LOCAL.match(local.lower())
    if not found:
        return None
    tag, subscriber_id = found["tag"], int(found["id"])
    if not hmac.compare_digest(found["mac"], _digest(secret, tag, subscriber_id)):
        return None
    return ReturnPath(subscriber_id=subscriber_id, tag=tag)
