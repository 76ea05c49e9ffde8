"""The database edge: engine, sessions, and Alembic migrations applied from code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session, create_engine

from newsletter.config import Settings
from newsletter.errors import JeudisError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(settings: Settings) -> sa.Engine:
    """An engine for the configured URL; SQLite gets WAL and foreign keys."""
    url = settings.db_url
    if url.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url)


def alembic_config(engine: sa.Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: sa.Engine) -> None:
    """Create or upgrade the schema to the newest revision."""
    command.upgrade(alembic_config(engine), "head")


def check_schema(engine: sa.Engine) -> None:
    """Refuse to run against a database that is missing migrations."""
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
                migrate(engine) if upgrade else check_schema(engine)
            except BaseException:
                engine.dispose()
                raise
            _engines[url] = engine
    return engine


@contextmanager
def open_session(settings: Settings, *, upgrade: bool = True) -> Iterator[Session]:
    """A session on an up-to-date schema (migrations are applied when `upgrade`)."""
    with Session(engine_for(settings, upgrade=upgrade), expire_on_commit=False) as session:
        yield session
