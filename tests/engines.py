"""The database engine under test: SQLite by default, PostgreSQL with JEUDIS_TEST_DATABASE_URL.

On PostgreSQL every JEUDIS_HOME a test makes gets its own fresh database, created on first use
(`newsletter.config.default_database_url` is swapped for `PostgresDatabases.url_for`) and
dropped when the test ends, so every test that leaves `database_url` unset runs on both
engines unchanged.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from newsletter.db import forget_engines

TEST_DATABASE_URL = os.environ.get("JEUDIS_TEST_DATABASE_URL", "").strip()
ENGINE = "postgresql" if TEST_DATABASE_URL else "sqlite"


def psycopg_url(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


class PostgresDatabases:
    """Creates uniquely named databases on one server and drops them again."""

    def __init__(self, admin_url: str):
        self.server = psycopg_url(admin_url)
        self.admin = sa.create_engine(self.server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.by_home: dict[str, str] = {}
        self.created: list[str] = []
        self._lock = threading.Lock()

    def create(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"jeudis_test_{uuid.uuid4().hex[:16]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        url = self.server.set(database=name).render_as_string(hide_password=False)
        with self._lock:
            self.created.append(url)
        return url

    def url_for(self, home: Path) -> str:
        """The database of the instance in `home`, created the first time it is asked for."""
        key = os.path.abspath(home)
        with self._lock:
            url = self.by_home.get(key)
        if url is None:
            url = self.create()
            with self._lock:
                url = self.by_home.setdefault(key, url)
        return url

    def terminate_connections(self, url: str) -> int:
        """Kill every server process connected to the database of `url` (a crash, a restart)."""
        name = sa.make_url(url).database
        with self.admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).all()
            )

    def drop_since(self, mark: int) -> None:
        """Drop the databases created after the `mark`-th one (engines closed first)."""
        with self._lock:
            urls = self.created[mark:]
            del self.created[mark:]
            for key in [k for k, v in self.by_home.items() if v in urls]:
                del self.by_home[key]
        forget_engines(set(urls))
        with self.admin.connect() as conn:
            for url in urls:
                name = sa.make_url(url).database
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
