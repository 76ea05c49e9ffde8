"""Shared fixtures: a fresh JEUDIS_HOME, a real SMTP server, a real HTTP server (loopback)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from smtp_server import SmtpServer, free_port  # tests/ is on sys.path (pytest's rootdir mode)

from newsletter import db
from newsletter.config import Settings, load_settings


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


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    """Dispose of the engines a test opened: each instance's pool holds file descriptors, and
    hundreds of tests' worth pass select()'s limit of 1024 (`filedescriptor out of range`)."""
    before = set(db._engines)
    yield
    for url in set(db._engines) - before:
        db._engines.pop(url).dispose()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    path = tmp_path / "home"
    path.mkdir()
    return Home(path, {"JEUDIS_HOME": str(path)})


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
