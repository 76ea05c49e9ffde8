"""Shared fixtures: a fresh JEUDIS_HOME, a real SMTP server, a real HTTP server (loopback).

The database engine comes from one place (tests/engines.py): SQLite files by default, a
fresh PostgreSQL database per instance when JEUDIS_TEST_DATABASE_URL is set. Tests that only
make sense on one engine carry `@pytest.mark.sqlite_only("why")` or
`@pytest.mark.postgres_only("why")` and are skipped, with the reason, on the other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from engines import ENGINE, TEST_DATABASE_URL, PostgresDatabases
from smtp_server import SmtpServer, free_port  # tests/ is on sys.path (pytest's rootdir mode)

from newsletter import config
from newsletter.config import Settings, load_settings

ONLY = {"sqlite_only": "sqlite", "postgres_only": "postgresql"}


def pytest_report_header(config) -> str:
    where = sa_url_without_password(TEST_DATABASE_URL) if TEST_DATABASE_URL else "files"
    return f"database engine: {ENGINE} ({where})"


def sa_url_without_password(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        for name, engine in ONLY.items():
            marker = item.get_closest_marker(name)
            if marker is not None and engine != ENGINE:
                why = marker.args[0] if marker.args else ""
                hint = "" if TEST_DATABASE_URL else "; set JEUDIS_TEST_DATABASE_URL to run it"
                reason = f"{engine} only: {why} (this run is on {ENGINE}{hint})"
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    """On PostgreSQL, every instance folder's default database is a fresh one of its own."""
    if not TEST_DATABASE_URL:
        yield None
        return
    databases = PostgresDatabases(TEST_DATABASE_URL)
    patch = pytest.MonkeyPatch()
    patch.setattr(config, "default_database_url", databases.url_for)
    try:
        yield databases
    finally:
        patch.undo()
        databases.drop_since(0)


@pytest.fixture(autouse=True)
def _drop_test_databases(postgres_databases) -> Iterator[None]:
    """Drop the databases the test made, once everything else of the test has stopped."""
    if postgres_databases is None:
        yield
        return
    mark = len(postgres_databases.created)
    yield
    postgres_databases.drop_since(mark)


@pytest.fixture
def postgres(postgres_databases) -> PostgresDatabases:
    """The PostgreSQL server under test (for tests marked postgres_only)."""
    if postgres_databases is None:
        pytest.skip("needs PostgreSQL: set JEUDIS_TEST_DATABASE_URL")
    return postgres_databases


@dataclass
class Home:
    """A fresh instance folder: its path, its settings, the environment that points at it."""

    path: Path
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)

    def with_env(self, **values: str) -> Home:
        """The same folder with more JEUDIS_* variables (e.g. JEUDIS_SMTP_URL)."""
        return Home(self.path, {**self.env, **values})


@pytest.fixture
def home(tmp_path: Path) -> Home:
    path = tmp_path / "home"
    path.mkdir()
    env = {"JEUDIS_HOME": str(path)}
    if TEST_DATABASE_URL:  # subprocesses do not see the swapped default: tell them
        env["JEUDIS_DATABASE_URL"] = config.default_database_url(path)
    return Home(path, env)


class FixedClock:
    """A clock that stands still until told to move."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 26, 7, 0, tzinfo=UTC))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A recording aiosmtpd server on 127.0.0.1; steer it through `.handler`."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def live_app():
    """Serve ASGI apps under a real uvicorn on 127.0.0.1: `base_url = live_app(app)`."""
    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app) -> str:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
