"""The SQLite file under the engine, with the standard library only: the instance folder, the
file's checks and creation. `newsletter.db` builds its engines on them."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from newsletter.errors import DatabaseError, InputError

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_PRAGMAS = ("PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000")
SQLITE_TIMEOUT = 30  # seconds to wait for a lock


def make_home(home: Path) -> None:
    """Create the instance folder readable by its owner only (0700); leave an existing one."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)


def not_sqlite(path: Path | str, reason: object) -> InputError:
    return InputError(f"database {path} is not a SQLite database (or is corrupt): {reason}")


def check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not a SQLite database, an empty one included: SQLite would take
    it as a new empty instance. A missing one is created whole (header written, owner-only
    0600) under a temporary name, then linked in place, so an empty `jeudis.db` is never
    ours; SQLite gives its -wal and -shm files the same mode."""
    try:
        if not path.exists():
            _create_sqlite_file(path)
        header = _read_header(path)
    except OSError as exc:
        raise DatabaseError(f"database {path}: {exc.strerror or exc}") from None
    if header != SQLITE_HEADER:
        raise not_sqlite(path, "the file is empty" if not header else "no SQLite header")


def _read_header(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(len(SQLITE_HEADER))


def _create_sqlite_file(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        conn = sqlite3.connect(tmp)
        conn.execute("PRAGMA journal_mode=WAL")  # writes the header
        conn.close()
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: theirs is as good
    finally:
        tmp.unlink(missing_ok=True)
