"""The database edge: engines (SQLite or PostgreSQL), sessions, migrations, the instance secret.

Every failure an operator can cause here becomes one line: a bad or unsupported
`database_url`, a missing driver or a file that is not a SQLite database is bad input (exit 2);
a database that cannot be reached is a runtime failure (exit 1) naming host and port.

Start-up: Alembic and SQLModel are imported inside the functions that need them, not at the
top. A command on a database already at the head revision never runs Alembic, and one that
reads through SQLAlchemy Core never needs the ORM; importing them would cost each such command
about half a second (see "CLI start-up" in the README).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.errors import DatabaseError, InputError, JeudisError, SettingsError
from newsletter.revisions import CURRENT_REVISIONS_SQL, MIGRATIONS, VERSION_TABLE, head_revision
from newsletter.sqlite_file import (
    SQLITE_PRAGMAS,
    SQLITE_TIMEOUT,
    check_sqlite_file,
    make_home,
    not_sqlite,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlmodel import Session

POSTGRES_EXTRA = "pip install 'jeudis-odd17[postgres]'"
MIGRATION_LOCK = 0x6A65756469730001  # "jeudis" 1: PostgreSQL advisory lock key


def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def database_url(settings: Settings) -> sa.URL:
    """The configured URL, checked; a bare `postgresql://` means psycopg 3."""
    try:
        url = sa.make_url(settings.db_url)
    except sa.exc.ArgumentError:
        scheme = settings.db_url.partition(":")[0]
        raise SettingsError(
            f"database_url: {scheme!r}… is not a database URL "
            "(sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/NAME)"
        ) from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise SettingsError(
            f"database_url: {backend} is not supported (sqlite:/// or postgresql+psycopg://)"
        )
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url


def describe(url: sa.URL) -> str:
    """Where the database is, for messages: the SQLite file, or host:port/name."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def make_engine(settings: Settings) -> sa.Engine:
    """An engine for the configured URL; SQLite gets WAL and foreign keys, every engine a
    pre-ping so a database restart costs one reconnect, not a failed request."""
    url = database_url(settings)
    make_home(settings.home)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except ImportError as exc:  # also SQLAlchemy's NoSuchModuleError
        raise InputError(
            f"database_url: no driver for {url.drivername} ({exc}): {POSTGRES_EXTRA}"
        ) from None


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        check_sqlite_file(Path(url.database))
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_TIMEOUT}, pool_pre_ping=True)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    return engine


def database_failure(url: sa.URL, exc: sa.exc.DBAPIError) -> JeudisError:
    """One line for a driver's error: unreachable (exit 1) or a corrupt SQLite file (exit 2)."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if url.get_backend_name() == "sqlite":
        if not isinstance(exc, sa.exc.OperationalError):  # "file is not a database", "malformed"
            return not_sqlite(url.database, reason)
        return DatabaseError(f"database {describe(url)}: {reason}")
    if isinstance(exc, sa.exc.OperationalError):
        return DatabaseError(f"database {describe(url)} is unreachable: {reason}")
    return DatabaseError(f"database {describe(url)}: {reason}")


def alembic_config(engine: sa.Engine, home: Path | None = None) -> Config:
    """Alembic's configuration; `home` lets a migration find the instance's old files."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    cfg.attributes["home"] = home
    return cfg


def schema_at_head(engine: sa.Engine) -> bool:
    """Whether the database records the head revision: one query, without Alembic."""
    head = head_revision()
    if head is None:
        return False
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return False
        return conn.execute(sa.text(CURRENT_REVISIONS_SQL)).scalars().all() == [head]


def migrate(engine: sa.Engine, home: Path | None = None) -> None:
    """Create or upgrade the schema to the newest revision (one process at a time); a schema
    already there is left alone without loading Alembic."""
    if schema_at_head(engine):
        return
    from alembic import command

    with migration_lock(engine):
        command.upgrade(alembic_config(engine, home), "head")


@contextmanager
def migration_lock(engine: sa.Engine) -> Iterator[None]:
    """Machines starting at once on one new database must not both create its tables: the
    others wait, then find the schema at head. PostgreSQL: an advisory lock held by a
    connection of its own; SQLite: flock on the database file (Linux keeps it apart from
    the POSIX locks SQLite itself takes)."""
    if is_postgres(engine):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                conn.commit()
    elif engine.url.database and engine.url.database != ":memory:":
        with open(engine.url.database, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield  # closing the file releases the lock
    else:
        yield


def check_schema(engine: sa.Engine) -> None:
    """Refuse to run against a database that is missing migrations."""
    if schema_at_head(engine):
        return
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise JeudisError(
            f"database at {engine.url.render_as_string(hide_password=True)} is at revision "
            f"{current or 'none'}, expected {head}: run `jeudis init`"
        )


_lock = threading.Lock()
_engines: dict[str, sa.Engine] = {}
_secrets: dict[str, bytes] = {}


def engine_for(settings: Settings, *, upgrade: bool = True) -> sa.Engine:
    """One engine per database URL and process, its schema migrated (or checked) once.

    Alembic's command API is not thread-safe, so the web server's threads must not each run
    it: the first caller migrates under a lock, the others reuse the engine."""
    url = settings.db_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(settings)
            try:
                migrate(engine, settings.home) if upgrade else check_schema(engine)
            except sa.exc.DBAPIError as exc:
                engine.dispose()
                raise database_failure(engine.url, exc) from None
            except BaseException:
                engine.dispose()
                raise
            _engines[url] = engine
    return engine


def forget_engines(urls: set[str] | None = None) -> None:
    """Close and forget cached engines (all, or those of `urls`), e.g. before dropping a
    database; the next `engine_for` opens a new one."""
    with _lock:
        for url in list(_engines) if urls is None else urls:
            engine = _engines.pop(url, None)
            _secrets.pop(url, None)
            if engine is not None:
                engine.dispose()


@contextmanager
def open_session(settings: Settings, *, upgrade: bool = True) -> Iterator[Session]:
    """A session on an up-to-date schema (migrations are applied when `upgrade`)."""
    from sqlmodel import Session

    with Session(engine_for(settings, upgrade=upgrade), expire_on_commit=False) as session:
        yield session


def instance_secret(settings: Settings) -> bytes:
    """The key that signs tokens, sessions and Message-IDs: the `secret` setting if given,
    else the database's own (one row, created by the migrations), so every machine on one
    database signs alike. Read once per database and process."""
    if settings.secret:
        return bytes.fromhex(settings.secret)
    url = settings.db_url
    secret = _secrets.get(url)
    if secret is None:
        with engine_for(settings).connect() as conn:
            value = conn.execute(sa.text("SELECT value FROM instance_secret")).scalar()
        if value is None:
            raise DatabaseError("the instance secret is missing from the database")
        secret = _secrets[url] = bytes.fromhex(value)
    return secret
