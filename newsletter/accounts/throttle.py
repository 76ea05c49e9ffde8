"""Login throttling per account and per client: exponential backoff, then a temporary lock.

The policy is a pure function of the number of failures (`wait_after`); the counters live in
the `login_throttle` table so that every desk process sees the same ones. Time comes from
the caller's clock: tests move it instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from newsletter.models import LoginThrottle


@dataclass(frozen=True)
class Policy:
    free: int  # failures allowed before any wait
    lock_after: int  # failures that lock the key for `lock`
    lock: timedelta
    forget_after: timedelta  # a quiet key starts again from zero


# A client may mistype several accounts' passwords; an account is one person's.
POLICIES = {
    "account": Policy(
        free=3, lock_after=10, lock=timedelta(minutes=15), forget_after=timedelta(days=1)
    ),
    "client": Policy(
        free=10, lock_after=30, lock=timedelta(minutes=15), forget_after=timedelta(days=1)
    ),
}
BACKOFF_CAP = timedelta(minutes=5)


def wait_after(failures: int, policy: Policy) -> timedelta:
    """How long a key must wait after its `failures`-th failure in a row."""
    if failures < policy.free:
        return timedelta(0)
    if failures >= policy.lock_after:
        return policy.lock
    # 2 s after the first failure past the free ones, then 4, 8, 16 s…
    return min(timedelta(seconds=2 ** (failures - policy.free + 1)), BACKOFF_CAP)


class Throttled(Exception):
    """Too many failures: wait `wait` (a lock when `locked`)."""

    def __init__(self, wait: timedelta, locked: bool):
        super().__init__(f"wait {wait}")
        self.wait, self.locked = wait, locked


def keys_for(name: str, client: str) -> dict[str, str]:
    return {"account": f"account:{name.strip().lower()}", "client": f"client:{client}"}


def check(session: Session, keys: dict[str, str], now: datetime) -> None:
    """Raise Throttled if any key must still wait (nothing is checked then: no oracle)."""
    for kind, key in keys.items():
        row = session.get(LoginThrottle, key)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            locked = row.failures >= POLICIES[kind].lock_after
            raise Throttled(row.blocked_until - now, locked)


def failed(session: Session, keys: dict[str, str], now: datetime) -> None:
    """Count one failure for each key and set how long it must wait (commits)."""
    for kind, key in keys.items():
        policy = POLICIES[kind]
        row = session.get(LoginThrottle, key) or LoginThrottle(key=key, last_failure_at=now)
        if now - row.last_failure_at > policy.forget_after:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        wait = wait_after(row.failures, policy)
        row.blocked_until = now + wait if wait else None
        session.add(row)
    session.commit()


def succeeded(session: Session, keys: dict[str, str]) -> None:
    """A right password: the account's and the client's counters start again."""
    for key in keys.values():
        row = session.get(LoginThrottle, key)
        if row is not None:
            session.delete(row)
    session.commit()


def french_wait(wait: timedelta) -> str:
    """« 8 secondes », « 15 minutes »: rounded up, for the message on the login page."""
    seconds = max(1, int(-(-wait.total_seconds() // 1)))
    if seconds < 60:
        return f"{seconds} seconde{'s' if seconds > 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def french_message(exc: Throttled) -> str:
    if exc.locked:
        return (
            "Trop de tentatives de connexion : l’accès est bloqué pour un moment. "
            f"Réessayez dans {french_wait(exc.wait)}."
        )
    return (
        f"Trop de tentatives de connexion : patientez {french_wait(exc.wait)} avant de réessayer."
    )
