"""The desk's door: named logins, sessions kept on the server, roles, CSRF.

- Accounts and their scrypt hashes live in the database (`jeudis editor add`); see
  newsletter.accounts. The signed cookie (Starlette's, keyed from the instance secret)
  carries a random session id whose row the server deletes at logout.
- A login is required when the desk is bound to anything but loopback, for any request
  from beyond loopback, and everywhere once an account exists; CSRF tokens are checked on
  every form everywhere (a web page could otherwise post to 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter import accounts
from newsletter.accounts import PASSWORD_MIN, Identity, hash_password, parse_hash, verify_password
from newsletter.config import Settings
from newsletter.db import instance_secret, open_session
from newsletter.errors import InputError, SettingsError
from newsletter.web.guard import Gate, is_loopback
from newsletter.weeks import Clock

__all__ = ["PASSWORD_MIN", "InputError", "hash_password", "parse_hash", "verify_password"]

CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "jeudis_desk"
PUBLIC_PATHS = ("/login",)  # inside the desk: everything else needs a login when required
LOCAL = Identity("local", "admin")  # the desk on loopback, before any account exists


def login_required(settings: Settings, scope: Scope | None = None) -> bool:
    """A login is needed when the desk listens beyond loopback; and for a request, unless
    it is local (guard.py) on an instance whose base_url is loopback too: a published
    instance's proxy may relay visitors with no forwarding header at all (nginx's default)."""
    if not is_loopback(settings.web_host):
        return True
    if scope is None:
        return False
    gate = Gate(settings)
    return not (gate.published is False and gate.is_local(scope))


def check_desk_settings(settings: Settings) -> None:
    """Refuse to open the desk beyond loopback with no way in (no account, no old password).

    `jeudis serve` should call it before binding: one clear line instead of a locked desk.
    """
    if settings.desk_password_hash:
        parse_hash(settings.desk_password_hash)
    if login_required(settings) and not settings.desk_password_hash:
        with open_session(settings) as session:
            if accounts.any_editor(session):
                return
        raise SettingsError(
            f"desk: no account to serve the desk on {settings.web_host} (not loopback); "
            "make one with `jeudis editor add NAME --role admin`"
        )


def session_secret(settings: Settings) -> str:
    """A key for session cookies, derived from the instance secret (never the secret itself)."""
    return hmac.new(instance_secret(settings), b"jeudis desk session", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def identity(request: Request) -> Identity | None:
    """Who is signed in (or `LOCAL` on an open loopback desk); set by LoginGuard."""
    return request.scope.get("state", {}).get("editor")


def is_editor(request: Request) -> bool:
    """True when someone is signed in with an account."""
    found = identity(request)
    return found is not None and found is not LOCAL


def actor(request: Request) -> str:
    """The name written in the audit log for what this request changes."""
    found = identity(request)
    return found.name if found else "local"


def require_admin(request: Request) -> None:
    """403 (a French page) unless an admin is acting."""
    found = identity(request)
    if found is None or not found.is_admin:
        raise HTTPException(
            403, "Réservé aux administrateurs du bureau : demandez-leur de le faire pour vous."
        )


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is checked (403 otherwise; guard.OriginGuard
    has already refused a foreign origin)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not (isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)):
        raise HTTPException(
            403, "Formulaire expiré ou falsifié : rechargez la page puis recommencez."
        )
    return form


def log_in(request: Request, token: str) -> None:
    # A fresh CSRF token at login: a token seen before it is worth nothing after.
    request.session.clear()
    request.session["sid"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> str | None:
    """Empty the cookie; returns the session id for the server to revoke."""
    token = request.session.get("sid")
    request.session.clear()
    return token


def _who(settings: Settings, clock: Clock, token: str | None) -> tuple[Identity | None, bool]:
    """(identity from the session id, whether any account exists)."""
    with open_session(settings) as session:
        found = accounts.current(session, settings, token, clock()) if token else None
        return found, found is not None or accounts.any_editor(session)


class LoginGuard:
    """ASGI middleware (inside the session middleware): finds who is signed in, and sends
    strangers to the login page when a login is required."""

    def __init__(self, app: ASGIApp, settings: Settings, clock: Clock):
        self.app, self.settings, self.clock = app, settings, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.session.get("sid")
        found, accounts_exist = await run_in_threadpool(_who, self.settings, self.clock, token)
        if token and found is None:
            request.session.pop("sid", None)  # revoked or expired: the cookie says so too
        required = accounts_exist or login_required(self.settings, scope)
        if found is None and not required:
            found = LOCAL
        scope.setdefault("state", {})["editor"] = found
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        if found is not None or path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if request.method in ("GET", "HEAD"):
            login = f"{scope.get('root_path', '')}/login?{urlencode({'next': path})}"
            response: Response = RedirectResponse(login, status_code=303)
        else:
            response = Response("Connexion requise.", status_code=401, media_type="text/plain")
        await response(scope, receive, send)
