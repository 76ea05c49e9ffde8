"""Followed feeds against the database: add, remove, list, fetch into proposed news, review.

One way in for the CLI, the scheduler (`fetch_all`, daily) and the web desk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session, or_, select

from newsletter.config import Settings
from newsletter.errors import InputError, NotFoundError
from newsletter.feeds import FeedEntry, FeedFormatError, ParsedFeed, parsed_from_json
from newsletter.fetch import FetchError, FetchLimits, FetchRequest, FetchResult, fetch_feeds
from newsletter.fetch import user_agent as make_user_agent
from newsletter.models import ContentItem, Feed
from newsletter.weeks import Clock

NAME_MAX_CHARS = 120
PARSER_MEMORY_BYTES = 1536 * 1024 * 1024  # address space of the parsing process
PARSERS = 4  # parsing processes at once
_CHILD = "from newsletter.feeds import child_main; child_main()"


@dataclass(frozen=True)
class FeedReport:
    """What one feed gave in one fetch; `line()` is what `feed fetch` prints."""

    feed_id: int
    name: str
    url: str
    ok: bool
    not_modified: bool = False
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    too_old: int = 0
    skipped: int = 0
    moved_to: str | None = None
    warning: str | None = None
    error: str | None = None

    def line(self) -> str:
        head = f"feed {self.feed_id} {self.name or self.url}:"
        if not self.ok:
            return f"{head} error: {self.error}"
        if self.not_modified:
            text = "not modified"
        else:
            counts = [
                f"{self.new} new",
                f"{self.updated} updated",
                f"{self.unchanged} unchanged",
                f"{self.too_old} too old",
            ]
            if self.skipped:
                counts.append(f"{self.skipped} without link or title")
            text = ", ".join(counts)
        if self.moved_to:
            text += f"; moved permanently to {self.moved_to}"
        if self.warning:
            text += f" (warning: {self.warning})"
        return f"{head} {text}"


# ---- the list of feeds ------------------------------------------------------------------


def check_feed_url(url: str) -> str:
    """The URL, stripped, if it is an absolute http(s) address; InputError otherwise."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InputError(f"url: {url!r} is not a valid address") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"url: {url!r} must be an http:// or https:// address")
    return url


def add_feed(
    session: Session, url: str, clock: Clock, *, name: str | None = None, auto: bool = False
) -> tuple[Feed, bool]:
    """Follow a feed; returns (feed, created). Adding the same URL twice changes nothing."""
    url = check_feed_url(url)
    existing = session.exec(select(Feed).where(Feed.url == url)).first()
    if existing is not None:
        return existing, False
    feed = Feed(url=url, name=(name or "").strip()[:NAME_MAX_CHARS], auto=auto, created_at=clock())
    session.add(feed)
    session.commit()
    session.refresh(feed)
    return feed, True


def get_feed(session: Session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise NotFoundError(f"feed {feed_id}: no such feed (see `jeudis feed list`)")
    return feed


def list_feeds(session: Session) -> list[Feed]:
    """Every followed feed, oldest first."""
    return list(session.exec(select(Feed).order_by(Feed.id)))


def remove_feed(session: Session, feed_id: int) -> tuple[Feed, int]:
    """Stop following a feed; returns (feed, proposals withdrawn).

    Its still-proposed entries go with it; anything an editor approved, rejected or that
    went out stays, detached from the feed.
    """
    feed = get_feed(session, feed_id)
    items = session.exec(select(ContentItem).where(ContentItem.feed_id == feed_id)).all()
    withdrawn = 0
    for item in items:
        if item.status == "proposed":
            session.delete(item)
            withdrawn += 1
        else:
            item.feed_id = None
            session.add(item)
    session.flush()
    session.delete(feed)
    session.commit()
    return feed, withdrawn


# ---- fetching ---------------------------------------------------------------------------


def fetch_all(
    session: Session,
    settings: Settings,
    clock: Clock,
    feed_ids: Sequence[int] | None = None,
    client: httpx.AsyncClient | None = None,
    on_fetched: Callable[[], None] | None = None,
) -> list[FeedReport]:
    """Fetch every feed (or the given ones) and turn their entries into news items.

    Feeds are fetched concurrently, each within settings.feed_timeout; then each is stored
    in its own transaction, so one broken feed never stops or spoils the others.
    """
    if feed_ids:
        feeds = [get_feed(session, i) for i in dict.fromkeys(feed_ids)]  # each once, in order
    else:
        feeds = list_feeds(session)
    limits = FetchLimits(
        timeout=settings.feed_timeout,
        max_bytes=settings.feed_max_bytes,
        user_agent=make_user_agent(settings.base_url),
    )
    requests = [FetchRequest(f.url, f.etag, f.last_modified) for f in feeds]
    outcomes = fetch_feeds(
        requests, limits, client=client, on_done=(lambda _i: on_fetched()) if on_fetched else None
    )
    now = clock()
    with ThreadPoolExecutor(max_workers=PARSERS) as pool:  # each parse is its own process
        parsed = list(pool.map(lambda o: _parse_outcome(o, settings, now), outcomes))
    return [
        _store_outcome(session, settings, now, feed, outcome, result)
        for feed, outcome, result in zip(feeds, outcomes, parsed, strict=True)
    ]


def _parse_outcome(outcome, settings: Settings, now: datetime):
    """The parsed feed, or the error to report, or None for a failed fetch or a 304."""
    if isinstance(outcome, FetchError) or outcome.not_modified:
        return None
    try:
        return parse_isolated(
            outcome.body,
            outcome.url,
            now,
            content_type=outcome.content_type,
            summary_max_chars=settings.summary_max_chars,
            timeout=settings.feed_timeout,
        )
    except (FeedFormatError, OSError) as exc:
        return FeedFormatError(str(exc))


def _store_outcome(
    session: Session,
    settings: Settings,
    now: datetime,
    feed: Feed,
    outcome: FetchResult | FetchError,
    parsed: ParsedFeed | FeedFormatError | None,
) -> FeedReport:
    feed_id, name, url = feed.id or 0, feed.name, feed.url
    try:
        if isinstance(outcome, FetchError):
            raise outcome
        if isinstance(parsed, FeedFormatError):
            raise parsed
        if outcome.not_modified or parsed is None:
            report = FeedReport(feed_id, name, url, ok=True, not_modified=True)
        else:
            report = _store_entries(session, feed, parsed, now, settings.feed_max_age_days)
            _remember_good_state(session, feed, outcome, parsed)
            report = _with_move(session, feed, outcome, report)
        _mark(feed, now, ok=True, warning=report.warning)
        session.add(feed)
        session.commit()
        return report
    except (FetchError, FeedFormatError) as exc:
        message = str(exc)
    except Exception as exc:  # a feed must never stop the others, whatever it holds
        message = f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
    session.rollback()
    feed = session.get(Feed, feed_id) or feed
    _mark(feed, now, ok=False, warning=message)
    session.add(feed)
    session.commit()
    return FeedReport(feed_id, name, url, ok=False, error=message)


def parse_isolated(
    data: bytes,
    base_url: str,
    now: datetime,
    *,
    content_type: str | None,
    summary_max_chars: int,
    timeout: float,
) -> ParsedFeed:
    """`feeds.parse_feed` in a child process, killed if it outlives `timeout` seconds."""
    options = {
        "base_url": base_url,
        "now": now.isoformat(),
        "content_type": content_type,
        "summary_max_chars": summary_max_chars,
        "memory_bytes": PARSER_MEMORY_BYTES if sys.platform.startswith("linux") else 0,
    }
    command = [sys.executable, "-c", _CHILD, json.dumps(options)]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FeedFormatError(f"parsing took longer than {timeout:g} s (refused)") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise FeedFormatError(
            f"the parser stopped without an answer (exit {done.returncode}, out of memory?)"
        ) from None
    if answer.get("status") != "ok":
        raise FeedFormatError(str(answer.get("reason")))
    return parsed_from_json(answer["feed"])


def _mark(feed: Feed, now: datetime, *, ok: bool, warning: str | None) -> None:
    feed.last_fetched_at = now
    if ok:
        feed.last_ok_at = now
    if warning:  # errors, and warnings of a readable-but-malformed feed, with their time
        feed.last_error = warning[:500]
        feed.last_error_at = now


def _remember_good_state(session: Session, feed: Feed, result: FetchResult, parsed) -> None:
    # Validators are stored only once the body was usable, or a broken answer would be
    # answered 304 forever after.
    feed.etag = result.etag
    feed.last_modified = result.last_modified
    feed.entries_seen = len(parsed.entries) + parsed.skipped
    if not feed.name and parsed.title:
        feed.name = parsed.title[:NAME_MAX_CHARS]


def _with_move(session: Session, feed: Feed, result: FetchResult, report: FeedReport):
    target = result.permanent_url
    if not target or target == feed.url:
        return report
    if session.exec(select(Feed).where(Feed.url == target, Feed.id != feed.id)).first():
        note = f"moved permanently to {target}, already followed as another feed"
        return replace(report, warning=_join(report.warning, note))
    feed.url = target
    return replace(report, moved_to=target)


def _store_entries(
    session: Session, feed: Feed, parsed: ParsedFeed, now: datetime, max_age_days: int
) -> FeedReport:
    oldest = now - timedelta(days=max_age_days)
    source_name = feed.name or parsed.title or urlsplit(feed.url).hostname or feed.url
    counts = {"new": 0, "updated": 0, "unchanged": 0, "too_old": 0}
    seen: set[str] = set()
    for entry in parsed.entries:
        if entry.dated and entry.published_at < oldest:
            counts["too_old"] += 1
            continue
        if entry.key in seen or entry.link in seen:  # a repeat inside this very feed
            counts["unchanged"] += 1
            continue
        seen.update((entry.key, entry.link))
        counts[_store_entry(session, feed, entry, source_name, now)] += 1
        session.flush()
    return FeedReport(
        feed.id or 0,
        feed.name or source_name,
        feed.url,
        ok=True,
        skipped=parsed.skipped,
        warning=parsed.warning,
        **counts,
    )


def _store_entry(
    session: Session, feed: Feed, entry: FeedEntry, source_name: str, now: datetime
) -> str:
    """Insert or refresh one entry; returns "new", "updated" or "unchanged"."""
    existing = session.exec(
        select(ContentItem)
        .where(or_(ContentItem.source_key == entry.key, ContentItem.url == entry.link))
        .order_by(ContentItem.source_key != entry.key, ContentItem.id)
    ).first()
    if existing is None:
        session.add(_new_item(feed, entry, source_name, now))
        return "new"
    # Only a proposal from this very feed follows the feed's edits: what an editor queued,
    # rejected or sent stays as it was, and two syndicating feeds do not take turns.
    if (
        existing.content_hash == entry.content_hash
        or existing.status != "proposed"
        or existing.source != "feed"
        or existing.feed_id != feed.id
    ):
        return "unchanged"
    existing.title, existing.url, existing.summary = entry.title, entry.link, entry.summary
    existing.image_url, existing.image_alt = entry.image_url, entry.image_alt
    if entry.dated:
        existing.published_at = entry.published_at
    existing.content_hash = entry.content_hash
    existing.updated_at = now
    session.add(existing)
    return "updated"


def _new_item(feed: Feed, entry: FeedEntry, source_name: str, now: datetime) -> ContentItem:
    return ContentItem(
        kind="news",
        status="queued" if feed.auto else "proposed",
        title=entry.title,
        url=entry.link,
        summary=entry.summary,
        body="",  # plain summary + link only; see feeds.py for why no feed HTML is kept
        image_url=entry.image_url,
        image_alt=entry.image_alt,
        source="feed",
        source_key=entry.key,
        source_name=source_name[:NAME_MAX_CHARS],
        content_hash=entry.content_hash,
        feed_id=feed.id,
        published_at=entry.published_at,
        created_at=now,
        queued_at=now if feed.auto else None,
        updated_at=now,
    )


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second
