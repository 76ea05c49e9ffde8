"""Instance-wide locks: PostgreSQL advisory locks, or a file lock beside SQLite.

A lock is named (`build:2026-W48`, `issue-numbers`, `scheduler:weekly-build`). On PostgreSQL
it is a session-level advisory lock held on its own connection, so every machine pointed at
the database shares it, it outlives the build's commits, and it is released when its holder's
connection ends (a crashed process never leaves it behind). SQLite is one machine's database:
an flock on a file beside the database file does the same job there (so two JEUDIS_HOME
folders pointed at one SQLite file share it too).
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.db import engine_for


def lock_key(name: str) -> int:
    """The signed 64-bit key PostgreSQL's advisory locks take, stable across machines."""
    digest = hashlib.blake2b(f"jeudis:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def instance_lock(settings: Settings, name: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold the instance-wide lock `name`; yields False (without waiting) when `wait` is off
    and someone else holds it."""
    engine = engine_for(settings)
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, lock_key(name), wait) as held:
            yield held
    else:
        with _file_lock(_lock_folder(settings, engine), name, wait) as held:
            yield held


def _lock_folder(settings: Settings, engine: sa.Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        return settings.home / "locks"
    path = Path(database)
    return path.parent / f"{path.name}.locks"


@contextmanager
def _advisory_lock(engine: sa.Engine, key: int, wait: bool) -> Iterator[bool]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if wait:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            held = True
        else:
            held = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        try:
            yield bool(held)
        finally:
            if held:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


@contextmanager
def _file_lock(folder: Path, name: str, wait: bool) -> Iterator[bool]:
    path = folder / f"{name.replace(':', '-')}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
