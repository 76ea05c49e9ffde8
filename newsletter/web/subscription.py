"""Subscription pages: sign up (double opt-in), confirm, unsubscribe (RFC 8058 one-click).

GET never changes anything: mail scanners and link previews open links on their own, so
each GET shows a page with a button and only the POST acts. The signed token in the URL is
the credential, so the token POSTs need no session or CSRF token; that is what lets a
mailbox provider send `List-Unsubscribe=One-Click` with no cookie. A forged, foreign or
malformed token (of any shape or length) gets a 400 page and changes nothing.

Sign-up: a honeypot field, a per-client rate limit (counted in the database, so several
web processes count together), and one answer for every address, sent before the work
(`signup.invite`, which also holds each address to one confirmation per day).
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter import ratelimit, signup, subscribers
from newsletter.config import Settings
from newsletter.db import engine_for, instance_secret
from newsletter.subscribers import InvalidAddress
from newsletter.tokens import BadToken
from newsletter.web import web_templates
from newsletter.web.guard import Gate, refuse
from newsletter.weeks import Clock

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
MAX_FIELD = 320  # the longest valid address; names are cut there too


class Subscription:
    """The pages, bound to one instance's settings, clock and database."""

    def __init__(self, settings: Settings, clock: Clock):
        self.settings, self.clock = settings, clock
        self.templates = web_templates(settings)
        self.engine = engine_for(settings)
        self.gate = Gate(settings)

    def page(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        background: BackgroundTask | None = None,
        **context,
    ) -> Response:
        context.setdefault("contact", self.settings.reply_to or self.settings.unsubscribe_mailto)
        response = self.templates.TemplateResponse(
            request,
            f"subscription/{template}",
            context,
            status_code=status_code,
            background=background,
        )
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-store"
        return response

    def bad_link(self, request: Request) -> Response:
        return self.page(request, "invalid_link.html", status_code=400)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------ token pages

    def token_page(self, purpose: str, template: str):
        """GET: check the token, show the subscriber's address and one button."""

        def endpoint(request: Request) -> Response:
            token = request.path_params["token"]
            try:
                with self.session() as session:
                    subscriber = subscribers.peek(session, self.settings, purpose, token)
            except BadToken:
                return self.bad_link(request)
            return self.page(request, template, subscriber=subscriber, token=token)

        return endpoint

    def token_action(self, action, template: str):
        """POST: do it (idempotent) and say so; no body is needed or read."""

        def endpoint(request: Request) -> Response:
            token = request.path_params["token"]
            try:
                with self.session() as session:
                    subscriber = action(session, self.settings, self.clock, token)
            except BadToken:
                return self.bad_link(request)
            return self.page(request, template, subscriber=subscriber)

        return endpoint

    # ------------------------------------------------------------ sign-up

    def subscribe_form(self, request: Request) -> Response:
        return self.page(request, "subscribe.html", email="", name="", error=None)

    async def subscribe(self, request: Request) -> Response:
        """The same answer, with the same work before it, whatever the address's state:
        whether it is new, waiting or active is decided after the answer is sent."""
        try:
            form = await request.form(max_files=0, max_fields=10)
        except HTTPException:  # files, too many fields: not this page's form
            return self.page(
                request, "subscribe.html", status_code=400, email="", name="", error=True
            )
        email = str(form.get("email", ""))[:MAX_FIELD].strip()
        name = " ".join(str(form.get("name", ""))[:MAX_FIELD].split())
        if form.get("website"):  # the hidden field only robots fill in
            return self.page(request, "check_inbox.html")
        try:
            subscribers.normalise_email(email)  # its form only: says nothing of its state
        except InvalidAddress:
            return self.page(
                request, "subscribe.html", status_code=400, email=email, name=name, error=True
            )
        if not await run_in_threadpool(self._within_rate, request.scope):
            limit = self.settings.signup_per_client_per_hour
            return refuse(request.scope, 429, f"over {limit} sign-ups in an hour", self.settings)
        return self.page(
            request, "check_inbox.html", background=BackgroundTask(self._invite, email, name)
        )

    def _within_rate(self, scope) -> bool:
        limit = self.settings.signup_per_client_per_hour
        if limit <= 0:
            return True
        key = ratelimit.client_key(instance_secret(self.settings), self.gate.client_address(scope))
        with self.session() as session:
            return ratelimit.allow(session, "signup", key, self.clock(), limit, timedelta(hours=1))

    def _invite(self, email: str, name: str) -> None:
        with self.session() as session:
            signup.invite(session, self.settings, self.clock, email, name, how="form")


def routes(settings: Settings, clock: Clock) -> list[BaseRoute]:
    """/subscribe, /confirm/{token}, /unsubscribe/{token}."""
    pages = Subscription(settings, clock)
    return [
        Route("/subscribe", pages.subscribe_form, methods=["GET"], name="subscribe"),
        Route("/subscribe", pages.subscribe, methods=["POST"]),
        Route(
            "/confirm/{token}",
            pages.token_page("confirm", "confirm.html"),
            methods=["GET"],
            name="confirm",
        ),
        Route(
            "/confirm/{token}",
            pages.token_action(subscribers.confirm, "confirmed.html"),
            methods=["POST"],
        ),
        Route(
            "/unsubscribe/{token}",
            pages.token_page("unsubscribe", "unsubscribe.html"),
            methods=["GET"],
            name="unsubscribe",
        ),
        Route(
            "/unsubscribe/{token}",
            pages.token_action(subscribers.unsubscribe, "unsubscribed.html"),
            methods=["POST"],
        ),
        # A link cut right after the slash is a bad link too, not a missing page.
        Route("/confirm/", pages.bad_link, methods=["GET", "POST"]),
        Route("/unsubscribe/", pages.bad_link, methods=["GET", "POST"]),
    ]
