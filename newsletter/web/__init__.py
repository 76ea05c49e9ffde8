"""The public web app: subscription pages, the editors' desk, and the archive as static files.

`create_app(settings, clock)` assembles route groups. A group is a module listed in
ROUTE_GROUPS that exposes `routes(settings, clock) -> list[BaseRoute]` (a group with its own
Starlette app returns `[Mount("/desk", app=...)]`). The published archive
($JEUDIS_HOME/site/) is served last, at /, so any route of a group wins over a file.
Around them: the Host check (guard.py) and the body limits (limits.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.config import Settings
from newsletter.web.guard import HostGuard
from newsletter.web.limits import BodyLimit
from newsletter.weeks import Clock, system_clock

ROUTE_GROUPS: tuple[str, ...] = (
    "newsletter.web.subscription",
    "newsletter.web.desk",
    "newsletter.web.archive",  # /archive/ from the database, at each issue's send time
)
# Sent with every response; pages add their own Content-Security-Policy.
SAFE_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",  # personal tokens live in URLs
    b"x-frame-options": b"DENY",
}


def web_templates(settings: Settings) -> Jinja2Templates:
    """Templates under templates/web/ (base.html and one folder per route group)."""
    return Jinja2Templates(directory=str(settings.templates_dir / "web"))


class SafeHeaders:
    """Adds SAFE_HEADERS to each response that does not set them itself."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SAFE_HEADERS.items() if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    settings: Settings, clock: Clock = system_clock, groups: Sequence[str] = ROUTE_GROUPS
) -> Starlette:
    """The whole site for one instance: every route group, then the archive at /."""
    routes: list[BaseRoute] = []
    for name in groups:
        routes += importlib.import_module(name).routes(settings, clock)
    assets = settings.templates_dir / "web" / "static"
    routes.append(Mount("/_assets", app=StaticFiles(directory=assets), name="web-assets"))
    settings.archive_dir.mkdir(parents=True, exist_ok=True)
    routes.append(Mount("/", app=StaticFiles(directory=settings.archive_dir, html=True)))
    # Outermost first: every answer gets the safe headers, a foreign Host is refused before
    # anything else, then bodies are held to their limits.
    middleware = [
        Middleware(SafeHeaders),
        Middleware(HostGuard, settings=settings),
        Middleware(BodyLimit, settings=settings),
    ]
    return Starlette(routes=routes, middleware=middleware)
