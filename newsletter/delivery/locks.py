"""One sender at a time on SQLite: a lock file next to the database file.

SQLite has no row locks to claim with, so its senders take turns (on PostgreSQL any number
run at once, see claims.py). The kernel releases the lock when the process dies.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from newsletter.config import Settings
from newsletter.errors import JeudisError


def lock_path(settings: Settings) -> Path:
    """`<database file>.send.lock` (the instance folder for an in-memory database)."""
    database = make_url(settings.db_url).database
    if not database or database == ":memory:":
        return settings.home / "send.lock"
    return Path(database + ".send.lock")


@contextmanager
def sender_lock(settings: Settings) -> Iterator[None]:
    """Hold the SQLite database's sender lock, or fail at once if another sender has it."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JeudisError(f"{path}: another `jeudis send` is running") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
