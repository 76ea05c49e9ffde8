"""Feed parsing, pure: bytes + base URL + now -> entry values, sanitised and plain.

Nothing here touches the network, the database or the clock. The HTTP edge is
`newsletter.fetch`, the database side `newsletter.feed_service`.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from xml.parsers import expat

import feedparser
import nh3

TITLE_MAX_CHARS = 200
MAX_ENTRIES = 500  # a news feed carries tens; beyond this it is a dump or an attack
ELLIPSIS = "…"
WEB_SCHEMES = ("http", "https")

# What survives in entry HTML: text structure and links, nothing that runs or loads.
_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "cite", "code", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "i", "li", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup",
    "u", "ul",
}  # fmt: skip
# Removed with their content (the rest of the unknown tags are unwrapped, text kept).
_DROPPED_WITH_CONTENT = {
    "script", "style", "iframe", "object", "embed", "noscript", "template", "svg",
    "math", "textarea", "select", "title", "head",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}}
_URL_SCHEMES = {"http", "https", "mailto"}
_TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|xtor)$", re.IGNORECASE)
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p",
    "pre", "section", "table", "td", "th", "tr", "ul",
}  # fmt: skip
_MAX_ENTITY_VALUE = 64
_NOT_XML_TYPE = "served with a non-XML content type"


class FeedFormatError(Exception):
    """The bytes are not a feed we can read (an HTML page, garbage, a hostile DOCTYPE)."""


@dataclass(frozen=True)
class FeedEntry:
    """One entry, ready to become a news item: plain text, absolute web links, aware date."""

    key: str  # "feed:" + guid or canonical link: the dedupe key across fetches and feeds
    link: str
    title: str
    summary: str
    image_url: str | None
    image_alt: str | None
    published_at: datetime
    dated: bool  # False when the feed gave no usable date and published_at is "now"
    content_hash: str


@dataclass(frozen=True)
class ParsedFeed:
    """What a fetch gives: the feed's own title, its entries, and any parser complaint."""

    title: str
    entries: list[FeedEntry]
    warning: str | None = None  # malformed but readable: entries are still given
    skipped: int = 0  # entries without a usable web link or title


def parse_feed(
    data: bytes,
    base_url: str,
    now: datetime,
    *,
    content_type: str | None = None,
    summary_max_chars: int = 280,
) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0 or Atom bytes; raise FeedFormatError if it is no feed at all."""
    _refuse_entity_tricks(data)
    headers = {"content-location": base_url}
    if content_type:
        headers["content-type"] = content_type
    # A BytesIO, never bytes: feedparser would try `open()` on bytes that look like a path.
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    warning = _bozo_message(parsed) if parsed.get("bozo") else None
    if warning == _NOT_XML_TYPE:  # text/plain feeds are common and harmless
        warning = None
    if not parsed.get("version") and not parsed.entries:
        raise FeedFormatError(_not_a_feed_reason(data, content_type, warning))
    entries, skipped = [], 0
    for raw in parsed.entries[:MAX_ENTRIES]:
        entry = _entry(raw, base_url, now, summary_max_chars)
        if entry is None:
            skipped += 1
        else:
            entries.append(entry)
    title = cut_text(_detail_text(parsed.feed, "title"), TITLE_MAX_CHARS)
    return ParsedFeed(title=title, entries=entries, warning=warning, skipped=skipped)


def child_main() -> None:
    """Entry point of the parsing process (see feed_service.parse_isolated).

    argv[1] is JSON options, stdin the feed bytes; stdout gets one JSON answer. feedparser is
    pure Python and some 5 MB documents take it minutes: a separate process, killed at a
    deadline and under an address-space limit, bounds both time and memory.
    """
    import sys

    options = json.loads(sys.argv[1])
    try:
        if options.get("memory_bytes"):
            import resource

            limit = int(options["memory_bytes"])
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        parsed = parse_feed(
            sys.stdin.buffer.read(),
            options["base_url"],
            datetime.fromisoformat(options["now"]),
            content_type=options.get("content_type"),
            summary_max_chars=int(options["summary_max_chars"]),
        )
        answer = {"status": "ok", "feed": parsed_to_json(parsed)}
    except FeedFormatError as exc:
        answer = {"status": "refused", "reason": str(exc)}
    except MemoryError:
        answer = {"status": "refused", "reason": "the feed needs too much memory to parse"}
    except Exception as exc:  # whatever the bytes hold, the parent gets one line
        reason = f"the parser failed: {type(exc).__name__}: {exc}"[:300]
        answer = {"status": "refused", "reason": reason}
    sys.stdout.write(json.dumps(answer, ensure_ascii=True))


def parsed_to_json(parsed: ParsedFeed) -> dict:
    """Plain JSON values (no pickle crosses from the process that read hostile bytes)."""
    entries = [
        {**entry.__dict__, "published_at": entry.published_at.isoformat()}
        for entry in parsed.entries
    ]
    return {**parsed.__dict__, "entries": entries}


def parsed_from_json(data: dict) -> ParsedFeed:
    entries = [
        FeedEntry(**{**e, "published_at": datetime.fromisoformat(e["published_at"])})
        for e in data["entries"]
    ]
    return ParsedFeed(
        title=str(data["title"]),
        entries=entries,
        warning=data.get("warning"),
        skipped=int(data.get("skipped", 0)),
    )


def _not_a_feed_reason(data: bytes, content_type: str | None, warning: str | None) -> str:
    head = data[:1024].lstrip().lower()
    if (content_type or "").startswith("text/html") or head.startswith(
        (b"<!doctype html", b"<html")
    ):
        return "not an RSS or Atom feed (got an HTML page)"
    if not data.strip():
        return "not an RSS or Atom feed (empty body)"
    return f"not an RSS or Atom feed ({warning or 'no feed element'})"


def _bozo_message(parsed) -> str:
    exc = parsed.get("bozo_exception")
    name = type(exc).__name__ if exc else "error"
    if name == "CharacterEncodingOverride":
        return f"wrong encoding declared, read as {parsed.get('encoding')}"
    if name == "NonXMLContentType":
        return _NOT_XML_TYPE
    text = " ".join(str(exc).split()) if exc else "malformed"
    if hasattr(exc, "getLineNumber"):  # SAX errors: say where, not "<unknown>:6:47"
        text = f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"
    return f"malformed XML: {text}"[:200]


def _refuse_entity_tricks(data: bytes) -> None:
    """Refuse a DOCTYPE that declares nested, long or external entities (billion laughs).

    feedparser already drops such declarations, but a feed that carries them is hostile or
    broken; saying so beats half-parsing it. Plain one-character entities (`&nbsp;`) pass.
    """
    parser = expat.ParserCreate()

    class _Stop(Exception):
        pass

    def on_entity(name, is_param, value, base, system_id, public_id, notation):
        if is_param or system_id or public_id or value is None:
            raise FeedFormatError(f"DOCTYPE declares an external or parameter entity ({name})")
        if "&" in value or "%" in value or len(value) > _MAX_ENTITY_VALUE:
            raise FeedFormatError(f"DOCTYPE declares a nested or oversized entity ({name})")

    def on_start(*_args):
        raise _Stop

    parser.EntityDeclHandler = on_entity
    parser.StartElementHandler = on_start
    try:
        parser.Parse(data, True)
    except _Stop:
        return
    except expat.ExpatError:
        # expat could not read the prolog (unknown encoding...): fall back to a plain look.
        head = data[: (m.start() if (m := re.search(rb"<[A-Za-z]", data)) else 4096)]
        if re.search(rb"<!ENTITY[^>]*(&|%|SYSTEM|PUBLIC)", head):
            raise FeedFormatError("DOCTYPE declares nested or external entities") from None


def _entry(raw, base_url: str, now: datetime, summary_max_chars: int) -> FeedEntry | None:
    link = web_url(raw.get("link") or _alternate_link(raw), base_url)
    if link is None:
        return None
    link = canonical_url(link)
    summary_full = _entry_text(raw, base_url)
    title = cut_text(_detail_text(raw, "title"), TITLE_MAX_CHARS) or cut_text(summary_full, 90)
    if not title:
        return None
    summary = cut_text(summary_full, summary_max_chars)
    published = _entry_date(raw)
    dated = published is not None
    if published is None or published > now + timedelta(days=1):
        published = now  # undated, or dated in the future: seen today is the honest date
    image_url = _entry_image(raw, base_url)
    guid = (raw.get("id") or "").strip()
    key = "feed:" + (_global_guid(guid, base_url) if guid else link)
    fields = [title, link, summary, image_url, published.isoformat() if dated else None]
    digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
    return FeedEntry(
        key=key[:500],
        link=link,
        title=title,
        summary=summary,
        image_url=image_url,
        image_alt=title if image_url else None,
        published_at=published,
        dated=dated,
        content_hash=digest,
    )


def _global_guid(guid: str, base_url: str) -> str:
    # A guid such as "42" is only unique inside its feed; URLs, tag: and urn: are global.
    if ":" in guid:
        return canonical_url(guid) if guid.startswith(WEB_SCHEMES) else guid
    return f"{canonical_url(base_url)}#{guid}"


def _alternate_link(raw) -> str | None:
    for link in raw.get("links", []):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link["href"]
    return None


def _entry_date(raw) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(raw, name)  # plain lookup: no feedparser key aliasing (and warning)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _entry_text(raw, base_url: str) -> str:
    """The entry's summary (else its content) as plain text, from sanitised HTML."""
    detail = raw.get("summary_detail")
    if not (detail and detail.get("value")):
        contents = raw.get("content") or []
        detail = contents[0] if contents else None
    if not detail or not detail.get("value"):
        return ""
    return _detail_value_text(detail, base_url)


def _detail_text(container, name: str) -> str:
    detail = container.get(f"{name}_detail")
    if detail and detail.get("value"):
        return _detail_value_text(detail, None)
    return html_to_text(sanitize_html(container.get(name) or ""))


def _detail_value_text(detail, base_url: str | None) -> str:
    # Every field goes through the sanitiser, text/plain included: RSS titles declared as
    # text routinely carry HTML, and an escaped `<` survives the round trip as text.
    value = detail.get("value") or ""
    return html_to_text(sanitize_html(value, base_url or detail.get("base") or None))


def _entry_image(raw, base_url: str) -> str | None:
    """The entry's picture (media:content/thumbnail, image enclosure), not a tracking pixel."""
    candidates = []
    for media in raw.get("media_content", []):
        if media.get("medium", "image") == "image" or media.get("type", "").startswith("image/"):
            candidates.append(media)
    candidates += raw.get("media_thumbnail", [])
    for link in raw.get("links", []):
        if link.get("rel") == "enclosure" and link.get("type", "").startswith("image/"):
            candidates.append(link)
    for media in candidates:
        url = web_url(media.get("url") or media.get("href"), base_url)
        if url and not _is_pixel(media):
            return url
    return None


def _is_pixel(media) -> bool:
    for side in ("width", "height"):
        try:
            if int(str(media.get(side, "")).strip() or 100) <= 2:
                return True
        except ValueError:
            continue
    return False


def web_url(value: str | None, base_url: str) -> str | None:
    """An absolute http(s) URL resolved against the base, or None (javascript:, data:...)."""
    if not value:
        return None
    value = "".join(value.split())  # browsers ignore whitespace inside URLs, so must we
    try:
        absolute = urljoin(base_url, value)
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
        return None
    return absolute[:2000]


def canonical_url(url: str) -> str:
    """The form used to recognise the same page: lower-case host, no fragment or utm_* tags."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port and (scheme, port) not in {("http", 80), ("https", 443)}:
        host = f"{host}:{port}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not _TRACKING_PARAMS.match(k)]
    if len(kept) != len(pairs):  # re-encode only when a tag went, to keep the rest as is
        query = urlencode(kept)
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def sanitize_html(html: str, base_url: str | None = None) -> str:
    """Allow-list sanitising: text structure and http(s)/mailto links, absolute when based."""
    relative = ("rewrite_with_base", base_url) if base_url and web_url(base_url, "") else "deny"
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        url_relative=relative,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _DROPPED_WITH_CONTENT:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in _DROPPED_WITH_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment, whitespace collapsed to single spaces."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def cut_text(text: str, max_chars: int) -> str:
    """Cut on a word boundary and end with « … », the whole staying within max_chars."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    room = text[: max_chars - len(ELLIPSIS) + 1]  # one extra char: is the cut mid-word?
    # Back to the last space; only one giant word (a URL...) is cut inside.
    cut = room.rsplit(" ", 1)[0] if " " in room else room[:-1]
    return cut.rstrip(" ,;:.-–—(«\"'") + ELLIPSIS
