"""The public archive served from the database: /archive/, its Atom feed, one page per issue.

Any machine of the instance answers the same pages (nothing is read from $JEUDIS_HOME/site),
and an issue appears at its scheduled send time, by this app's clock. Issue pages are
rendered on request and kept in a small cache keyed by what they are made of.
"""

from __future__ import annotations

from collections import OrderedDict

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.archive import (
    REDIRECT,
    archive_entries,
    is_public,
    render_feed,
    render_index,
)
from newsletter.build import issue_for_week, render_recorded
from newsletter.config import Settings
from newsletter.db import engine_for
from newsletter.publish import FEED_FILE, public_page
from newsletter.weeks import Clock

CACHED_PAGES = 64
CACHE_CONTROL = "public, max-age=60"  # a new issue shows within a minute of its send time
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; base-uri 'none'"


class Archive:
    """The archive's pages, bound to one instance's settings, clock and database."""

    def __init__(self, settings: Settings, clock: Clock):
        self.settings, self.clock = settings, clock
        self.engine = engine_for(settings)
        self.pages: OrderedDict[tuple, str] = OrderedDict()

    def index(self) -> str:
        with Session(self.engine) as session:
            return render_index(
                archive_entries(session, self.settings, self.clock()), self.settings
            )

    def feed(self) -> str:
        with Session(self.engine) as session:
            return render_feed(archive_entries(session, self.settings, self.clock()), self.settings)

    def issue_page(self, week: str) -> str | None:
        """The public page of `week`, or None when there is no such public issue."""
        with Session(self.engine) as session:
            issue = issue_for_week(session, week.upper())
            if issue is None or not is_public(self.settings, issue, self.clock()):
                return None
            key = (issue.id, issue.week_key, issue.number, issue.subject, issue.built_at)
            page = self.pages.get(key)
            if page is None:
                rendered = render_recorded(session, self.settings, issue)
                page = public_page(self.settings, issue.week_key, rendered)
                self.pages[key] = page
                while len(self.pages) > CACHED_PAGES:
                    self.pages.popitem(last=False)
            self.pages.move_to_end(key)
            return page

    async def serve(self, request: Request) -> Response:
        rest = request.path_params["rest"]
        if rest in ("", "index.html"):
            return _html(await run_in_threadpool(self.index))
        if rest == FEED_FILE:
            body = await run_in_threadpool(self.feed)
            return _page(body, "application/atom+xml; charset=utf-8")
        week, _, tail = rest.partition("/")
        if tail not in ("", "index.html"):
            return _not_found()
        page = await run_in_threadpool(self.issue_page, week)
        if page is None:
            return _not_found()
        if not rest.endswith(("/", "index.html")):
            return RedirectResponse(f"{request.url.path}/", status_code=301)
        return _html(page)


def _page(body: str, media_type: str) -> Response:
    response = Response(body, media_type=media_type)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def _html(body: str) -> Response:
    response = _page(body, "text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CSP
    return response


def _not_found() -> Response:
    return Response("Not Found", status_code=404, media_type="text/plain")


def routes(settings: Settings, clock: Clock) -> list[BaseRoute]:
    archive = Archive(settings, clock)

    async def to_index(_request: Request) -> Response:
        return RedirectResponse("/archive/", status_code=301)

    async def front_door(_request: Request) -> Response:
        # A front page published into $JEUDIS_HOME/site wins; else the archive's own door,
        # so a machine that never ran `jeudis publish` still answers /.
        page = settings.archive_dir / "index.html"
        return FileResponse(page) if page.is_file() else _html(REDIRECT)

    return [
        Route("/", front_door, name="front-door"),
        Route("/archive", to_index),
        Route("/archive/{rest:path}", archive.serve, name="archive"),
    ]
