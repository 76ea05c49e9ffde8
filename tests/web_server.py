"""`jeudis serve`'s own uvicorn (web/server.py's settings) on 127.0.0.1, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from smtp_server import free_port

from newsletter.config import Settings
from newsletter.web.server import server_config

T = TypeVar("T")


class LiveServer:
    """Start with `with LiveServer(app, settings) as server:`; `stop()` waits for the work
    still running after the answers (background tasks) to finish."""

    def __init__(self, app, settings: Settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = server_config(app, settings, "127.0.0.1", self.port, log_level="warning")
        config.timeout_graceful_shutdown = 30
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=40)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def eventually(probe: Callable[[], T], within: float = 15.0) -> T:
    """The first truthy value of `probe()`, polled until `within` seconds have passed: for
    work a server does after answering. A bound, not a timing assertion."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            assert value, f"still false after {within} s: {probe}"
            return value
        threading.Event().wait(0.02)
