"""Request bodies: how big and how slow they may be, and a quiet end for those that stop.

A body announced or found larger than `web_max_body_bytes` gets a 413 page as soon as the
limit is known (never read whole); a body that stalls for `web_body_timeout` seconds gets a
408; a client that hangs up mid-request is one log line. Each is one line in the log, never
a traceback (half-sent requests used to log one traceback each).
"""

from __future__ import annotations

import anyio
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.config import Settings
from newsletter.web.guard import Gate, log, refuse


class Refused(Exception):
    """Raised into the app once the refusal page has been sent: unwinds it quietly."""


class BodyLimit:
    """ASGI middleware enforcing the body size and pace limits above."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings
        self.max_bytes, self.timeout = settings.web_max_body_bytes, settings.web_body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "0").strip()
        if not (declared.isascii() and declared.isdigit()) or int(declared[:20]) > self.max_bytes:
            reason = f"body of {declared[:20]!r} bytes (limit {self.max_bytes})"
            await refuse(scope, 413, reason, self.settings)(scope, receive, send)
            return
        body = _Body(self, scope, receive, send)
        try:
            await self.app(scope, body.receive, body.send)
        except Refused:
            pass
        except ClientDisconnect:
            if not body.hung_up:  # already logged
                body.log_hang_up()


class _Body:
    """One request's receive/send pair, counting what arrives."""

    def __init__(self, limit: BodyLimit, scope: Scope, receive: Receive, send: Send):
        self.limit, self.scope, self.raw_receive, self.raw_send = limit, scope, receive, send
        self.received = 0
        self.complete = self.started = self.answered = self.hung_up = False

    async def send(self, message: Message) -> None:
        if self.answered:  # the refusal page went out already: drop the app's own answer
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.raw_send(message)

    async def receive(self) -> Message:
        if self.complete:  # e.g. a stream waiting for the disconnect: no deadline
            return await self.raw_receive()
        try:
            with anyio.fail_after(self.limit.timeout):
                message = await self.raw_receive()
        except TimeoutError:
            await self.answer(408, f"body not received within {self.limit.timeout:g} s")
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.limit.max_bytes:
                await self.answer(413, f"body over {self.limit.max_bytes} bytes")
        elif message["type"] == "http.disconnect":
            self.log_hang_up()
            self.complete = True
        return message

    async def answer(self, status: int, reason: str) -> None:
        if not self.started:
            response = refuse(self.scope, status, reason, self.limit.settings)
            await response(self.scope, self.raw_receive, self.raw_send)
            self.answered = True
        raise Refused(reason)

    def log_hang_up(self) -> None:
        self.hung_up = True
        client = Gate(self.limit.settings).client_address(self.scope) or "-"
        log.warning(
            "hung up %s %r from %s after %d body bytes",
            self.scope.get("method", "-"),
            self.scope.get("path", "")[:200],
            client,
            self.received,
        )
