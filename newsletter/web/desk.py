"""The editors' desk: a small Starlette app mounted at /desk.

Pages: the calendar of coming Thursdays with the runway per kind, the queue by kind and
status, the item form, the preview of any coming issue with live reload, a test send.
Every action calls the same service functions as the CLI (calendar, preview_issue,
add_item, edit_item, approve_item, reject_item, queue_single, the sender).

Include it in the site with `Mount("/desk", app=desk_app(settings, clock))`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter import accounts
from newsletter.audit import record
from newsletter.build import calendar
from newsletter.config import Settings
from newsletter.content import import_content
from newsletter.db import open_session
from newsletter.items_table import ITEM_STATUSES, KINDS
from newsletter.models import ContentItem, Issue
from newsletter.queue import list_items
from newsletter.render import french_date
from newsletter.web import auth, guard
from newsletter.web.live import LiveReload
from newsletter.weeks import Clock

RUNWAY_WARNING_WEEKS = 3  # as `jeudis plan`: a kind that runs dry sooner is flagged
CALENDAR_WEEKS = 8
KIND_LABELS = {"news": "Actualité", "example": "Exemple inspirant", "tool": "Outil"}
KIND_PLURALS = {"news": "actualités", "example": "exemples inspirants", "tool": "outils"}
STATUS_LABELS = {
    "proposed": "Proposé",
    "queued": "En file",
    "used": "Envoyé",
    "rejected": "Rejeté",
    "dropped": "Retiré",
}
ACTION_LABELS = {
    "item.add": "ajout",
    "item.edit": "modification",
    "item.drop": "retrait",
    "item.approve": "approbation",
    "item.reject": "rejet",
    "item.import": "import de fichiers",
    "issue.build": "préparation du numéro",
    "issue.test-send": "envoi de test",
    "issue.subject": "objet du numéro",
    "outbox.send": "envoi",
    "editor.login": "connexion",
    "editor.logout": "déconnexion",
    "subscriber.export": "export des données d’un lecteur",
    "subscriber.forget": "effacement d’un lecteur",
}
ERROR_TEXTS = {
    400: "Requête incorrecte.",
    401: "Connexion requise.",
    403: "Accès refusé.",
    404: "Cette page n'existe pas.",
    405: "Méthode non permise.",
}


@dataclass
class Desk:
    """What every desk page needs: settings, clock, templates, the live-reload counter."""

    settings: Settings
    clock: Clock
    templates: Jinja2Templates
    live: LiveReload
    content_dir: Path | None
    retry_sleep: Callable[[float], None]

    def today(self) -> date:
        return self.clock().astimezone(self.settings.tz).date()

    def page(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        nonce = secrets.token_urlsafe(16)
        response = self.templates.TemplateResponse(
            request, name, {**context, "nonce": nonce}, status_code=status
        )
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: https: http:; frame-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'self'"
        )
        return response


def desk_of(request: Request) -> Desk:
    return request.app.state.desk


REFRESH_HEADER = "X-Desk-Refresh"


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page (after a redirect)."""
    request.session["flash"] = {"kind": kind, "text": text}


def _context(request: Request) -> dict[str, Any]:
    desk = desk_of(request)
    return {
        "csrf_field": auth.CSRF_FIELD,
        "csrf_token": auth.csrf_token(request),
        # A live refresh (live_reload.html) leaves the one-time message to the next page.
        "flash": None if REFRESH_HEADER in request.headers else request.session.pop("flash", None),
        "login_required": auth.identity(request) is not auth.LOCAL,
        "editor": auth.is_editor(request),
        "identity": auth.identity(request),
        "live_version": desk.live.version,
        "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "french_date": french_date,
        "local_time": lambda moment: moment.astimezone(desk.settings.tz).strftime("%d/%m/%Y %H:%M"),
        "action_labels": ACTION_LABELS,
    }


def _templates(settings: Settings) -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(str(Path(settings.templates_dir) / "web" / "desk")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env, context_processors=[_context])


# ---- calendar and queue -----------------------------------------------------------------


def runway_rows(view, weeks: int) -> list[dict[str, Any]]:
    """Per kind: weeks covered, items queued, and the warning when it runs dry soon."""
    rows = []
    for kind in KINDS:
        dry = view.dry_since[kind]
        runway = view.runway[kind]
        rows.append(
            {
                "kind": kind,
                "label": KIND_LABELS[kind],
                "plural": KIND_PLURALS[kind],
                "runway": runway,
                "queued": view.queued[kind],
                "dry": dry,
                "warn": dry is not None and runway < RUNWAY_WARNING_WEEKS,
                "enough": dry is None,
                "weeks": weeks,
            }
        )
    return rows


async def calendar_page(request: Request) -> Response:
    desk = desk_of(request)
    raw = request.query_params.get("weeks", "")
    weeks = min(max(int(raw), 1), 52) if raw.isdigit() else CALENDAR_WEEKS

    def load():
        with open_session(desk.settings) as session:
            return calendar(session, desk.settings, desk.today(), weeks)

    view = await run_in_threadpool(load)
    return desk.page(
        request,
        "calendar.html",
        {"view": view, "runway": runway_rows(view, weeks), "weeks": weeks, "kinds": KINDS},
    )


async def queue_page(request: Request) -> Response:
    desk = desk_of(request)
    kind = request.query_params.get("kind") or None
    status = request.query_params.get("status") or "queued"
    if kind not in (None, *KINDS) or status not in (*ITEM_STATUSES, "all"):
        raise HTTPException(400, "Filtre inconnu.")

    def load():
        with open_session(desk.settings) as session:
            counts = {(k, s): 0 for k in KINDS for s in ITEM_STATUSES}
            for row in session.exec(select(ContentItem.kind, ContentItem.status)):
                counts[(row[0], row[1])] = counts.get((row[0], row[1]), 0) + 1
            shown = list_items(session, kind, None if status == "all" else status)
            proposed = list_items(session, "news", "proposed") if status != "proposed" else []
            issues = {i.id: i for i in session.exec(select(Issue))}
            return counts, shown, proposed, issues

    counts, shown, proposed, issues = await run_in_threadpool(load)
    return desk.page(
        request,
        "queue.html",
        {
            "counts": counts,
            "items": shown,
            "proposed": proposed,
            "issues": issues,
            "kind": kind,
            "status": status,
            "kinds": KINDS,
            "statuses": ITEM_STATUSES,
        },
    )


# ---- login ----------------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    # Only a path inside the desk: never an open redirect to another site.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def login(request: Request) -> Response:
    desk = desk_of(request)
    root = request.scope.get("root_path", "")
    target = _safe_next(request.query_params.get("next"))
    error, name, status = None, "", 200
    if request.method == "POST":
        form = await auth.checked_form(request)
        target = _safe_next(str(form.get("next") or ""))
        name = str(form.get("name") or "admin")[:80]
        password = str(form.get("password") or "")[:1024]
        # The visitor's address, not the proxy's (guard.py: trusted_proxies).
        client = guard.Gate(desk.settings).client_address(request.scope) or "unknown"

        def attempt() -> str:
            with open_session(desk.settings) as session:
                return accounts.log_in(session, desk.settings, desk.clock, name, password, client)[
                    1
                ]

        try:
            token = await run_in_threadpool(attempt)
        except accounts.Throttled as exc:
            error, status = accounts.french_message(exc), 429
        except accounts.BadCredentials:
            error, status = "Nom ou mot de passe incorrect.", 401
        else:
            auth.log_in(request, token)
            return RedirectResponse(root + target, status_code=303)

    def configured() -> bool:
        with open_session(desk.settings) as session:
            return bool(desk.settings.desk_password_hash) or accounts.any_editor(session)

    return desk.page(
        request,
        "login.html",
        {
            "next": target,
            "error": error,
            "name": name,
            "configured": await run_in_threadpool(configured),
        },
        status=status,
    )


async def logout(request: Request) -> Response:
    await auth.checked_form(request)
    desk = desk_of(request)
    who = auth.actor(request)
    token = auth.log_out(request)

    def end() -> None:
        with open_session(desk.settings) as session:
            accounts.close(session, token)
            if token:
                record(session, who, "editor.logout", f"editor:{who}", clock=desk.clock)

    await run_in_threadpool(end)
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/login", status_code=303)


async def live_events(request: Request) -> Response:
    return desk_of(request).live.response(request)


async def error_page(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "")
    text = detail if detail and any(c in detail for c in "éèàç'’") else ERROR_TEXTS.get(status)
    if getattr(request.app.state, "desk", None) is None:
        return Response(text or "Erreur.", status_code=status, media_type="text/plain")
    return desk_of(request).page(
        request, "error.html", {"status": status, "message": text or "Erreur."}, status=status
    )


# ---- assembly ---------------------------------------------------------------------------------


class SecurityHeaders:
    """Headers every desk answer carries: no sniffing, no caching, framed only by itself."""

    HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"cache-control", b"no-store"),
        (b"x-frame-options", b"SAMEORIGIN"),
    ]

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def queue_digest(settings: Settings) -> str:
    """Changes whenever an item or an issue changes, whoever changed it."""
    with open_session(settings) as session:
        items = session.exec(
            select(
                ContentItem.id,
                ContentItem.status,
                ContentItem.content_hash,
                ContentItem.priority,
                ContentItem.issue_id,
                ContentItem.updated_at,
            ).order_by(ContentItem.id)
        ).all()
        issues = session.exec(select(Issue.id, Issue.week_key).order_by(Issue.id)).all()
    return hashlib.sha256(repr((items, issues)).encode()).hexdigest()


def _reimporter(settings: Settings, clock: Clock, content_dir: Path | None):
    """Re-import the content folder when one of its files changed; returns the problems."""

    def on_files(files: set[Path]) -> list[str]:
        if content_dir is None:
            return []
        root = content_dir.resolve()
        if not any(root in path.resolve().parents for path in files):
            return []
        with open_session(settings) as session:
            report = import_content(session, content_dir, clock)
        return [str(error) for error in report.errors]

    return on_files


def desk_app(
    settings: Settings,
    clock: Clock,
    *,
    content_dir: Path | None = None,
    retry_sleep: Callable[[float], None] | None = None,
) -> Starlette:
    """The desk as an ASGI app; login and CSRF included. Mount it at /desk."""
    if settings.desk_password_hash:
        auth.parse_hash(settings.desk_password_hash)  # a mistyped hash is said at start
    # Beyond loopback without a hash, the desk is served locked: its login page says why.
    from newsletter.web import desk_admin, desk_items, desk_preview, desk_returns

    templates_dir = Path(settings.templates_dir)
    watched = [templates_dir] + ([content_dir] if content_dir is not None else [])
    live = LiveReload(
        watched,
        probe=lambda: queue_digest(settings),
        on_files=_reimporter(settings, clock, content_dir),
    )
    routes = [
        Route("/", calendar_page, name="calendar"),
        Route("/queue", queue_page, name="queue"),
        *desk_items.ROUTES,
        *desk_preview.ROUTES,
        *desk_admin.ROUTES,
        *desk_returns.ROUTES,
        Route("/live", live_events, name="live"),
        Route("/login", login, methods=["GET", "POST"], name="login"),
        Route("/logout", logout, methods=["POST"], name="logout"),
    ]
    middleware = [
        Middleware(guard.OriginGuard, settings=settings),
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=auth.session_secret(settings),
            session_cookie=auth.SESSION_COOKIE,
            max_age=settings.desk_session_hours * 3600,
            same_site="strict",
        ),
        Middleware(auth.LoginGuard, settings=settings, clock=clock),
    ]
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: error_page}
    )
    app.state.desk = Desk(
        settings,
        clock,
        _templates(settings),
        live,
        content_dir,
        retry_sleep or _interactive_sleep,
    )
    return app


def routes(settings: Settings, clock: Clock, content_dir: Path | None = None) -> list[BaseRoute]:
    """The desk as a route group of `newsletter.web.create_app`, mounted at /desk.

    Content files are re-imported on change from `content_dir` (or the content_dir setting),
    or else from ./content when this instance was filled from it (its files are already in
    the queue): a folder nobody imported is never imported behind the editors' back.
    """
    if content_dir is None and settings.content_dir:
        content_dir = Path(settings.content_dir)
    if content_dir is None and imported_folder(settings, Path.cwd() / "content"):
        content_dir = Path.cwd() / "content"
    return [Mount("/desk", app=desk_app(settings, clock, content_dir=content_dir))]


def imported_folder(settings: Settings, folder: Path) -> bool:
    """True if some file of `folder` was imported into this instance's queue."""
    from newsletter.content import content_files, content_root, source_key_of

    if not folder.is_dir():
        return False
    root = content_root(folder, settings.content_root)
    keys = [source_key_of(path, root) for path in content_files(folder)]
    if not keys:
        return False
    with open_session(settings) as session:
        found = session.exec(
            select(ContentItem.id).where(col(ContentItem.source_key).in_(keys)).limit(1)
        ).first()
    return found is not None


def _interactive_sleep(seconds: float) -> None:
    # A test send is interactive: retry quickly rather than keep the editor waiting.
    time.sleep(min(seconds, 0.25))
