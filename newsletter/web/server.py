"""The HTTP server under `jeudis serve`: uvicorn, with the limits a public site needs.

uvicorn's h11 protocol gives a keep-alive timeout and a size limit on a request's head, but
no deadline for the head itself: a client that sends half a request line and stalls holds
its connection forever, and enough of them make the site unreachable. `GuardedProtocol`
adds that deadline (`web_header_timeout`) and a cap on open connections
(`web_max_connections`) that, when reached, first drops the oldest connection still
waiting for its head: stalled clients make room for new ones instead of locking them out.
Each dropped connection is one log line.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from newsletter.config import Settings
from newsletter.web.guard import log

MAX_HEAD_BYTES = 16 * 1024  # request line + headers; h11 answers 400 beyond it


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request head and a connection cap."""

    def __init__(self, *args: Any, header_timeout: float, max_connections: int, **kw: Any):
        super().__init__(*args, **kw)
        self.header_timeout, self.max_connections = header_timeout, max_connections
        # Connections of this server still waiting for a head, oldest first (shared).
        self.waiting: dict[GuardedProtocol, None] = self.server_state.__dict__.setdefault(
            "jeudis_waiting", {}
        )
        self.deadline: asyncio.TimerHandle | None = None
        self.seen_cycle: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.wait_for_head()
        while len(self.connections) > self.max_connections:
            oldest = next(iter(self.waiting), self)
            oldest.drop(f"over {self.max_connections} connections, oldest waiting one closed")
            if oldest is self:
                break

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_waiting()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self.seen_cycle:
            self.seen_cycle = self.cycle  # a whole head arrived: the app has it now
            self.stop_waiting()

    def on_response_complete(self) -> None:
        self.wait_for_head()  # keep-alive: the next head has the same deadline
        super().on_response_complete()

    def wait_for_head(self) -> None:
        self.stop_waiting()
        self.waiting[self] = None
        self.deadline = self.loop.call_later(self.header_timeout, self.head_timed_out)

    def stop_waiting(self) -> None:
        self.waiting.pop(self, None)
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def head_timed_out(self) -> None:
        self.drop(f"no complete request within {self.header_timeout:g} s")

    def drop(self, reason: str) -> None:
        self.stop_waiting()
        self.connections.discard(self)  # counted out now, not when the loop notices the close
        if not self.transport.is_closing():
            client = "{}:{}".format(*self.client) if self.client else "-"
            log.warning("closed connection from %s: %s", client, reason)
            self.transport.close()


def server_config(
    app: Any, settings: Settings, host: str, port: int, log_level: str = "info"
) -> uvicorn.Config:
    """uvicorn's settings for this instance: timeouts, limits, no proxy-header rewriting
    (guard.py reads forwarding headers, and only from `trusted_proxies`)."""
    protocol = partial(
        GuardedProtocol,
        header_timeout=settings.web_header_timeout,
        max_connections=settings.web_max_connections,
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,  # type: ignore[arg-type]
        ws="none",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.web_idle_timeout,
        limit_concurrency=settings.web_max_connections + 1,  # our cap closes first
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_graceful_shutdown=3,
        log_level=log_level,
    )
