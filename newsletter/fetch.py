"""The HTTP edge for feeds: conditional GET, redirects, a size cap and a wall-clock deadline.

httpx timeouts bound each socket operation, so a server dripping one byte at a time never
trips them; the deadline here is a real one (asyncio cancellation around the whole exchange,
redirects included). Bodies are streamed and decoded by hand so a 50 MB answer, or a small
gzip bomb, stops at the cap with bounded memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import zlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

MAX_REDIRECTS = 5
PERMANENT = {301, 308}
REDIRECTS = {301, 302, 303, 307, 308}
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
T = TypeVar("T")


def user_agent(contact_url: str = "") -> str:
    """A User-Agent that says who is fetching and where to find out more."""
    try:
        version = metadata.version("jeudis-odd17")
    except metadata.PackageNotFoundError:
        version = "dev"
    contact = f"; +{contact_url}" if contact_url else ""
    agent = f"JeudisODD17/{version} (feed reader of Les Jeudis de l'ODD 17{contact})"
    return agent.encode("ascii", "ignore").decode()  # header values are ASCII


class FetchError(Exception):
    """A feed could not be fetched; the message is one line a user can read."""


@dataclass(frozen=True)
class FetchRequest:
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """A 200 with its body, or a 304 (body empty): the caller keeps what it had."""

    status: int
    body: bytes
    url: str  # the address that answered, after redirects
    permanent_url: str | None  # where the feed moved for good (301/308 from the start)
    etag: str | None
    last_modified: str | None
    content_type: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 10.0  # seconds, the whole exchange
    max_bytes: int = 5_000_000
    user_agent: str = ""


def fetch_feed(
    request: FetchRequest, limits: FetchLimits, client: httpx.AsyncClient | None = None
) -> FetchResult:
    """Fetch one feed (blocking); raise FetchError with a one-line reason."""
    outcome = fetch_feeds([request], limits, client=client)[0]
    if isinstance(outcome, FetchError):
        raise outcome
    return outcome


def fetch_feeds(
    requests: Sequence[FetchRequest],
    limits: FetchLimits,
    *,
    client: httpx.AsyncClient | None = None,
    concurrency: int = 8,
    on_done: Callable[[int], None] | None = None,
) -> list[FetchResult | FetchError]:
    """Fetch several feeds at once (blocking); one result or FetchError per request, in order.

    `client` is used for this call only (its connections belong to the event loop run here).
    `on_done(index)` is called as each feed finishes, for progress displays.
    """
    return _run(_fetch_many(requests, limits, client, concurrency, on_done))


async def _fetch_many(requests, limits, client, concurrency, on_done):
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(index: int, http: httpx.AsyncClient) -> FetchResult | FetchError:
        async with gate:
            try:
                async with asyncio.timeout(limits.timeout):
                    return await _fetch(http, requests[index], limits)
            except TimeoutError:
                return FetchError(f"timed out after {limits.timeout:g} s")
            except FetchError as exc:
                return exc
            finally:
                if on_done:
                    on_done(index)

    if client is not None:
        return await asyncio.gather(*(one(i, client) for i in range(len(requests))))
    async with _new_client(limits) as http:
        return await asyncio.gather(*(one(i, http) for i in range(len(requests))))


def _new_client(limits: FetchLimits) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(limits.timeout),
        follow_redirects=False,  # followed by hand: each hop is checked and counted
        headers={"User-Agent": limits.user_agent or user_agent(), "Accept": ACCEPT},
    )


async def _fetch(http: httpx.AsyncClient, request: FetchRequest, limits: FetchLimits):
    url, permanent, still_permanent = request.url, None, True
    for _hop in range(MAX_REDIRECTS + 1):
        _check_scheme(url)
        headers = {"Accept-Encoding": "gzip, deflate"}
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        try:
            async with http.stream("GET", url, headers=headers) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    still_permanent = still_permanent and response.status_code in PERMANENT
                    url = urljoin(url, response.headers["location"])
                    permanent = url if still_permanent else permanent
                    continue
                return await _result(response, url, permanent, limits)
        except httpx.TimeoutException:
            raise FetchError(f"timed out after {limits.timeout:g} s") from None
        except httpx.InvalidURL as exc:
            raise FetchError(f"invalid URL: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{_describe(exc)}") from None
    raise FetchError(f"too many redirects (more than {MAX_REDIRECTS})")


def _check_scheme(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"refused address {url[:200]!r}: only http and https are followed")


async def _result(response: httpx.Response, url, permanent, limits) -> FetchResult:
    status = response.status_code
    headers = response.headers
    if status == 304:
        body = b""
    elif status == 200:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise FetchError(f"too large: {int(declared)} bytes (limit {limits.max_bytes})")
        body = await _read_capped(response, limits.max_bytes)
    else:
        reason = response.reason_phrase or ""
        raise FetchError(f"HTTP {status} {reason}".strip())
    return FetchResult(
        status=status,
        body=body,
        url=url,
        permanent_url=permanent,
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        content_type=headers.get("content-type"),
    )


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read and decode the body, stopping as soon as it passes max_bytes (decoded)."""
    decoder = _decoder(response.headers.get("content-encoding", ""))
    body = bytearray()
    too_large = FetchError(f"too large: more than {max_bytes} bytes (limit {max_bytes})")
    async for chunk in response.aiter_raw():
        while chunk:
            room = max_bytes + 1 - len(body)
            if decoder is None:
                piece, chunk = chunk[:room], b""
            else:
                try:
                    piece = decoder.decompress(chunk, room)
                except zlib.error as exc:
                    raise FetchError(f"cannot decode the compressed body: {exc}") from None
                chunk = decoder.unconsumed_tail
            body += piece
            if len(body) > max_bytes:
                raise too_large
    return bytes(body)


def _decoder(encoding: str):
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise FetchError(f"unsupported Content-Encoding {encoding!r}")


def _describe(exc: httpx.HTTPError) -> str:
    kind = {
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "broken HTTP answer",
        httpx.DecodingError: "cannot decode the body",
        httpx.TooManyRedirects: "too many redirects",
    }
    for cls, label in kind.items():
        if isinstance(exc, cls):
            detail = " ".join(str(exc).split())
            return f"{label}: {detail}"[:200] if detail else label
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
