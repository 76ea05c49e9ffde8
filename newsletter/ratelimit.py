"""Rate limits counted in the database, so every web process of an instance counts together.

A hit is one row (bucket, key, time); a request is allowed while fewer than `limit` hits of
its key fall within the window. Refused requests are not counted, and rows older than the
window are deleted as new ones come, so the table holds at most `limit` rows per key.
Concurrent requests of one key are serialized, so the limit is exact: on SQLite by the
write lock the first statement (a DELETE) takes, on PostgreSQL by a transaction-scoped
advisory lock on the key.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, text
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
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"rate:{bucket}:{key}".encode()).digest()[:8]
        lock = int.from_bytes(digest, "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})
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
