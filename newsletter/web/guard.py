"""Who may talk to the site: the hosts it answers, who counts as local, which origins post.

- **Host**: the host of `base_url` and the loopback names only. Any other `Host` (a
  DNS-rebinding page, a scanner naming another site) gets a 400 page before any route runs.
- **Peers**: a request is *local* only when it comes straight from a loopback peer that is
  not a configured proxy and sends no forwarding header. A peer listed in `trusted_proxies`
  is never local (a proxy on the same machine speaks for the whole internet); the last
  address of its `X-Forwarded-For` that is not itself a proxy names the client.
- **Origin**: a form posted to the desk must come from `base_url`'s origin, or, for a local
  request, from this server's loopback origin. `Host` never decides it: an attacker's page
  sets both.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter.config import Settings
from newsletter.web.pages import refusal_page

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

log = logging.getLogger("jeudis.web")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` only: anything else can be reached by others."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The name part of a `Host` header or URL netloc, lower case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    name, _, port = value.rpartition(":")
    return name if name and port.isdigit() else value


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL (default ports dropped), or None for no origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """`trusted_proxies` as networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _headers(scope: Scope) -> Headers:
    return Headers(raw=scope.get("headers") or [])


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


@dataclass(frozen=True)
class Gate:
    """The rules above for one instance's settings."""

    settings: Settings

    @cached_property
    def proxies(self) -> tuple[Network, ...]:
        return parse_networks(self.settings.trusted_proxies)

    @cached_property
    def public_origin(self) -> str | None:
        return origin_of(self.settings.base_url)

    @cached_property
    def hosts(self) -> frozenset[str]:
        return frozenset({urlsplit(self.settings.base_url).hostname or "", *LOOPBACK_NAMES})

    @cached_property
    def published(self) -> bool:
        """base_url names a host others can reach (the site is meant to be public)."""
        return not is_loopback(urlsplit(self.settings.base_url).hostname or "")

    def host_allowed(self, scope: Scope) -> bool:
        host = _headers(scope).get("host")
        if host is None:  # HTTP/1.0 without Host: the peer's own address decides
            return True
        name = host_name(host)
        return name in self.hosts or is_loopback(name)

    def is_local(self, scope: Scope) -> bool:
        """Straight from loopback: no proxy in between, no forwarding header."""
        peer = (scope.get("client") or ("", 0))[0]
        if not peer or not is_loopback(peer) or _in(peer, self.proxies):
            return False
        headers = _headers(scope)
        return not any(name in headers for name in FORWARDING_HEADERS)

    def client_address(self, scope: Scope) -> str:
        """The visitor's address: the peer, or what trusted proxies say the peer was."""
        peer = (scope.get("client") or ("", 0))[0]
        if not _in(peer, self.proxies):
            return peer
        chain = [
            part.strip()
            for value in _headers(scope).getlist("x-forwarded-for")
            for part in value.split(",")
            if part.strip()
        ]
        for address in reversed(chain):
            if not _in(address, self.proxies):
                return address
        return chain[0] if chain else peer

    def trusted_origins(self, scope: Scope) -> set[str]:
        origins = {self.public_origin} if self.public_origin else set()
        if self.is_local(scope):
            port = (scope.get("server") or ("", 0))[1]
            origins |= {origin_of(f"http://{n}:{port}") or "" for n in ("localhost", "127.0.0.1")}
            origins.add(f"http://[::1]:{port}")
        return origins

    def origin_allowed(self, scope: Scope) -> bool:
        """`Origin` (else `Referer`) names a trusted origin; a request with neither passes
        (not a browser's cross-site form: the CSRF token still has to match)."""
        headers = _headers(scope)
        sent = headers.get("origin")
        if sent is None and headers.get("referer"):
            sent = origin_of(headers["referer"]) or "null"
        if sent is None:
            return True
        return origin_of(sent) in self.trusted_origins(scope)


def refuse(scope: Scope, status: int, reason: str, settings: Settings) -> HTMLResponse:
    """One log line naming the client and what was refused, and the French page to send."""
    gate = Gate(settings)
    path = scope.get("path", "")[:200]
    log.warning(
        "refused %s %s %r from %s: %s",
        status,
        scope.get("method", "-"),
        path,
        gate.client_address(scope) or "-",
        reason,
    )
    return refusal_page(settings, status)


class HostGuard:
    """Outermost check: a request naming a host this site is not gets a 400 page."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings, self.gate = app, settings, Gate(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.gate.host_allowed(scope):
            host = _headers(scope).get("host", "")[:100]
            response = refuse(scope, 400, f"host {host!r} is not served here", self.settings)
            if scope["type"] == "http":
                await response(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


class OriginGuard:
    """For the desk: a form posted from another origin is refused before it is read."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings, self.gate = app, settings, Gate(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in UNSAFE_METHODS
            and not self.gate.origin_allowed(scope)
        ):
            origin = _headers(scope).get("origin") or _headers(scope).get("referer")
            reason = f"origin {str(origin)[:100]!r} is not this site"
            await refuse(scope, 403, reason, self.settings)(scope, receive, send)
            return
        await self.app(scope, receive, send)
