"""Rate limits counted in the database, so every web process of an instance counts together.

A hit is one row (bucket, key, time); a request is allowed while fewer than `limit` hits of
its key fall within the window. Refused requests are not counted, and rows older than the
window are deleted as new ones come, so the table holds at most `limit` rows per key.
Two requests racing may both pass the last slot: a limit of 10 may let 11 through.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, delete, select

from newsletter import tokens
from newsletter.models import RateHit


def client_key(secret: bytes, address: str) -> str:
    """A keyed hash of a client's address: counts it without storing it."""
    return tokens.mac(secret, f"client:{address}".encode())[:12].hex()


def allow(
    session: Session, bucket: str, key: str, now: datetime, limit: int, window: timedelta
) -> bool:
    """Count one request of `key` and say whether it is within the limit (commits)."""
    since = now - window
    session.exec(delete(RateHit).where(RateHit.bucket == bucket, RateHit.at < since))
    used = session.exec(
        select(func.count())
        .select_from(RateHit)
        .where(RateHit.bucket == bucket, RateHit.key == key, RateHit.at >= since)
    ).one()
    allowed = used < limit
    if allowed:
        session.add(RateHit(bucket=bucket, key=key, at=now))
    session.commit()
    return allowed
