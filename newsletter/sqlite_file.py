"""The SQLite file under the engine, with the standard library only: the instance folder, the
file's checks and creation, and one quick read of a database already at the head revision.

`newsletter.db` builds its engines on these checks. `read_at_head` lets a command that only
reads (`jeudis item list`) answer without loading SQLAlchemy; whenever it cannot answer, the
command goes through `db.engine_for`, which creates, migrates or reports the database exactly
as for every other command.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import DatabaseError, InputError
from newsletter.revisions import CURRENT_REVISIONS_SQL, head_revision

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


def plain_sqlite_path(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL (the default is one); None for any other URL,
    or one that SQLAlchemy would read differently (escapes, a query, a URI, memory)."""
    prefix = "sqlite:///"
    path = url[len(prefix) :] if url.startswith(prefix) else ""
    if not path or path == ":memory:" or path.startswith("file:") or any(c in path for c in "%?"):
        return None
    return Path(path)


def read_at_head(settings: Settings, sql: str, params: Mapping[str, object]) -> list | None:
    """The rows of one read (`:name` parameters) when the database is an existing SQLite file
    already at the head revision; None when it is not, or when anything fails, for the caller
    to go through SQLAlchemy, which then creates, migrates or reports it."""
    path = plain_sqlite_path(settings.db_url)
    head = head_revision()
    if path is None or head is None:
        return None
    try:
        make_home(settings.home)
        if _read_header(path) != SQLITE_HEADER:
            return None
        # mode=rw: never create the file (that is check_sqlite_file's job, done whole).
        uri = f"{path.absolute().as_uri()}?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT)
    except (OSError, sqlite3.Error):
        return None
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        if conn.execute(CURRENT_REVISIONS_SQL).fetchall() != [(head,)]:
            return None
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
