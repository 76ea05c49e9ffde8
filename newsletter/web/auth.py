"""The desk's door: password hashes, signed sessions, login when not on loopback, CSRF.

- The password is stored only as a scrypt hash in `desk_password_hash` (`jeudis desk-password`).
- Sessions are Starlette's signed cookies (itsdangerous), keyed from the instance secret.
- A login is required when the desk is bound to anything but loopback; CSRF tokens are
  checked on every form everywhere (a web page could otherwise post to 127.0.0.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter.config import Settings
from newsletter.db import instance_secret
from newsletter.errors import InputError, SettingsError

SCHEME = "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PASSWORD_MIN = 10
CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "jeudis_desk"
SESSION_HOURS = 12
PUBLIC_PATHS = ("/login",)  # inside the desk: everything else needs a login when required


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64), for `desk_password_hash` in jeudis.toml."""
    if len(password) < PASSWORD_MIN:
        raise InputError(f"password: at least {PASSWORD_MIN} characters")
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join([SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches the stored hash (constant-time comparison)."""
    scheme, n, r, p, salt, digest = parse_hash(encoded)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def parse_hash(encoded: str) -> tuple[str, int, int, int, bytes, bytes]:
    """The parts of a stored hash, or a SettingsError naming the setting."""
    parts = encoded.strip().split("$")
    try:
        if len(parts) != 6 or parts[0] != SCHEME:
            raise ValueError
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
        if n < 2 or n & (n - 1) or not salt or len(digest) < 16:
            raise ValueError
    except ValueError:
        raise SettingsError(
            "desk_password_hash: not a hash made by `jeudis desk-password`"
        ) from None
    return parts[0], n, r, p, salt, digest


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError(text) from None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` only: anything else can be reached by others."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def login_required(settings: Settings, scope: Scope | None = None) -> bool:
    """A login is needed when the desk listens beyond loopback, or when this request came
    from elsewhere (a reverse proxy's visitor, a server bound wider than its settings say)."""
    if not is_loopback(settings.web_host):
        return True
    if scope is not None:
        client = scope.get("client") or ("", 0)
        server = scope.get("server") or ("", 0)
        return not (is_loopback(client[0]) and is_loopback(server[0]))
    return False


def check_desk_settings(settings: Settings) -> None:
    """Refuse to open the desk beyond loopback without a (well-formed) password hash.

    `jeudis serve` should call it before binding: one clear line instead of a locked desk.
    """
    if settings.desk_password_hash:
        parse_hash(settings.desk_password_hash)
    elif login_required(settings):
        raise SettingsError(
            f"desk_password_hash: required to serve the desk on {settings.web_host} "
            "(not loopback); make one with `jeudis desk-password`"
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


def is_editor(request: Request) -> bool:
    return bool(request.session.get("editor"))


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token and origin are checked (403 otherwise)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "Requête refusée : elle ne vient pas du bureau éditorial.")
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not (isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)):
        raise HTTPException(
            403, "Formulaire expiré ou falsifié : rechargez la page puis recommencez."
        )
    return form


def log_in(request: Request) -> None:
    # A fresh CSRF token at login: a token seen before it is worth nothing after.
    request.session.clear()
    request.session["editor"] = True
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    request.session.clear()


class LoginGuard:
    """ASGI middleware (inside the session middleware): sends strangers to the login page."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not login_required(self.settings, scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        if path in PUBLIC_PATHS or is_editor(request):
            await self.app(scope, receive, send)
            return
        from starlette.responses import RedirectResponse, Response

        if request.method in ("GET", "HEAD"):
            login = f"{scope.get('root_path', '')}/login?{urlencode({'next': path})}"
            response: Response = RedirectResponse(login, status_code=303)
        else:
            response = Response("Connexion requise.", status_code=401, media_type="text/plain")
        await response(scope, receive, send)
