"""Feed fetching against a real HTTP server on 127.0.0.1, into a real SQLite database.

The server serves the files in tests/fixtures/feeds with ETag/Last-Modified/304, and has
rooms for redirects, errors, a 50 MB body, a gzip bomb and slow-drip answers.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner
from sqlmodel import select

from newsletter import feed_service, queue
from newsletter.cli import App, main
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.errors import ConflictError, InputError, NotFoundError
from newsletter.fetch import FetchError, FetchLimits, FetchRequest, fetch_feed
from newsletter.models import ContentItem, Feed

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LAST_MODIFIED = "Wed, 25 Nov 2026 10:00:00 GMT"
HUGE = 50 * 1024 * 1024
DRIP_GIVE_UP = 30.0  # a drip that outlives this means the deadline did not work


# ---- the server ---------------------------------------------------------------------------


class FeedSite:
    """What the server serves; tests change it between fetches."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str, bool]] = {}  # path -> body, type, validators
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sent: dict[str, int] = {}
        self.stop = threading.Event()
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, fixture: str, *, validators: bool = True, ctype=None) -> str:
        kind = ctype or ("text/html" if fixture.endswith(".html") else "application/rss+xml")
        self.files[path] = ((FEEDS / fixture).read_bytes(), kind, validators)
        return self.url(path)

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


class Handler(BaseHTTPRequestHandler):
    server_version = "FeedSite/1"

    def log_message(self, *args):  # quiet
        pass

    @property
    def site(self) -> FeedSite:
        return self.server.site  # type: ignore[attr-defined]

    def do_GET(self):
        self.site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = ROUTES.get(self.path.split("?")[0])
        if route:
            return route(self)
        if self.path in self.site.files:
            return self._file(*self.site.files[self.path])
        self._status(404)

    def _file(self, body: bytes, ctype: str, validators: bool):
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if validators:
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            if inm == etag or (inm is None and ims == LAST_MODIFIED):
                self.send_response(304)
                self.end_headers()
                return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if validators:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(body)

    def _status(self, code: int, location: str | None = None):
        self.send_response(code)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream(self, chunk: bytes, total: int, declared: bool, encoding: str | None = None):
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        if declared:
            self.send_header("Content-Length", str(total))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        sent = 0
        try:
            while sent < total and not self.site.stop.is_set():
                self.wfile.write(chunk)
                sent += len(chunk)
                self.site.sent[self.path] = sent
        except OSError:
            pass  # the client hung up: what we want

    def _drip(self, first: bytes, byte: bytes):
        deadline = time.monotonic() + DRIP_GIVE_UP
        try:
            self.wfile.write(first)
            self.wfile.flush()
            while time.monotonic() < deadline and not self.site.stop.wait(0.05):
                self.wfile.write(byte)
                self.wfile.flush()
        except OSError:
            pass


def _huge_chunk() -> bytes:
    item = b"<item><title>x</title><link>https://big.example.org/x</link></item>\n"
    return item * (65536 // len(item))


def _gzip_bomb() -> bytes:
    return gzip.compress(b"<!-- " + b" " * HUGE + b" -->", compresslevel=9)


ROUTES = {
    "/missing": lambda h: h._status(404),
    "/broken": lambda h: h._status(500),
    "/moved-permanently": lambda h: h._status(301, "/feeds/rss2.xml"),
    "/moved-temporarily": lambda h: h._status(302, "/feeds/rss2.xml"),
    "/moved-then-temporary": lambda h: h._status(301, "/moved-temporarily"),
    "/loop": lambda h: h._status(302, "/loop"),
    "/to-ftp": lambda h: h._status(301, "ftp://127.0.0.1/feed.xml"),
    "/huge-declared": lambda h: h._stream(_huge_chunk(), HUGE, declared=True),
    "/huge-streamed": lambda h: h._stream(_huge_chunk(), HUGE, declared=False),
    "/gzip-bomb": lambda h: h._stream(GZIP_BOMB, len(GZIP_BOMB), declared=True, encoding="gzip"),
    "/drip-body": lambda h: h._drip(
        b"HTTP/1.0 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n<rss>", b" "
    ),
    "/drip-headers": lambda h: h._drip(b"HTTP/1.0 200 OK\r\nX-Slow: ", b"a"),
}
GZIP_BOMB = _gzip_bomb()


@pytest.fixture
def site(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    state = FeedSite()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.site = state  # type: ignore[attr-defined]
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    state.stop.set()
    server.shutdown()
    server.server_close()


@dataclass
class MovableClock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return MovableClock()


@pytest.fixture
def settings(tmp_path):
    # Generous: a parse runs in a child process, slow to start on a loaded machine. The test
    # of the deadline itself sets a short one.
    return load_settings({"JEUDIS_HOME": str(tmp_path)}, feed_timeout=15.0)


@pytest.fixture
def session(settings):
    with open_session(settings) as s:
        yield s


def add(session, clock, url, **kwargs) -> Feed:
    return feed_service.add_feed(session, url, clock, **kwargs)[0]


def fetch(session, settings, clock, *feeds: Feed):
    ids = [f.id for f in feeds] or None
    return {r.feed_id: r for r in feed_service.fetch_all(session, settings, clock, ids)}


def items(session) -> list[ContentItem]:
    return list(session.exec(select(ContentItem).order_by(ContentItem.id)))


def item_titled(session, start: str) -> ContentItem:
    return next(i for i in items(session) if i.title.startswith(start))


# ---- the HTTP edge ------------------------------------------------------------------------


def limits(**kwargs) -> FetchLimits:
    return FetchLimits(**{"timeout": 2.0, "max_bytes": 1_000_000, **kwargs})


def test_conditional_get_sends_the_validators_and_reads_304(site):
    url = site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml")
    first = fetch_feed(FetchRequest(url), limits(user_agent="JeudisODD17/test"))
    assert first.status == 200 and first.etag and first.last_modified == LAST_MODIFIED
    assert first.body == (FEEDS / "rss2_cdata_entities_fr.xml").read_bytes()
    second = fetch_feed(FetchRequest(url, first.etag, first.last_modified), limits())
    assert second.not_modified and second.body == b""
    sent = site.headers_of("/feeds/rss2.xml")
    assert sent[0]["user-agent"] == "JeudisODD17/test"
    assert "if-none-match" not in sent[0]
    assert sent[1]["if-none-match"] == first.etag
    assert sent[1]["if-modified-since"] == LAST_MODIFIED
    assert sent[1]["user-agent"].startswith("JeudisODD17/")


@pytest.mark.parametrize(
    ("path", "remembered"),
    [
        ("/moved-permanently", "/feeds/rss2.xml"),
        ("/moved-temporarily", None),
        ("/moved-then-temporary", "/moved-temporarily"),
    ],
)
def test_redirects_are_followed_and_only_permanent_ones_remembered(site, path, remembered):
    site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml")
    result = fetch_feed(FetchRequest(site.url(path)), limits())
    assert result.status == 200 and result.url == site.url("/feeds/rss2.xml")
    assert result.permanent_url == (site.url(remembered) if remembered else None)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing", "HTTP 404 Not Found"),
        ("/broken", "HTTP 500 Internal Server Error"),
        ("/loop", "too many redirects"),
        ("/to-ftp", "only http and https"),
        ("/huge-declared", f"too large: {HUGE} bytes"),
        ("/huge-streamed", "too large: more than 1000000 bytes"),
        ("/gzip-bomb", "too large: more than 1000000 bytes"),
    ],
)
def test_failures_are_one_line_errors(site, path, message):
    with pytest.raises(FetchError, match=message) as caught:
        fetch_feed(FetchRequest(site.url(path)), limits())
    assert "\n" not in str(caught.value)


def test_a_huge_body_is_not_read_to_the_end(site):
    with pytest.raises(FetchError, match="too large"):
        fetch_feed(FetchRequest(site.url("/huge-streamed")), limits())
    site.stop.wait(0.5)  # let the server notice the hang-up before reading its counter
    assert site.sent["/huge-streamed"] < HUGE // 2


@pytest.mark.parametrize("path", ["/drip-body", "/drip-headers"])
def test_a_slow_drip_is_cut_at_the_deadline(site, path):
    # Each byte arrives well within httpx's per-read timeout; only a total deadline stops it.
    with pytest.raises(FetchError, match="timed out after 1 s"):
        fetch_feed(FetchRequest(site.url(path)), limits(timeout=1.0))


def test_nobody_listening_is_a_clear_error(site):
    with pytest.raises(FetchError, match="cannot connect"):
        fetch_feed(FetchRequest("http://127.0.0.1:9/feed.xml"), limits())


# ---- the service: fetch into proposed news ------------------------------------------------


def test_first_fetch_proposes_each_entry_as_news(site, session, settings, clock):
    rss2 = add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    atom = add(session, clock, site.serve("/feeds/atom.xml", "atom_relative_links.xml"))
    rss1 = add(session, clock, site.serve("/feeds/rss1.xml", "rss1_rdf.xml"), name="Réseau")
    reports = fetch(session, settings, clock)
    assert [(r.ok, r.new) for r in reports.values()] == [(True, 2), (True, 2), (True, 1)]
    assert reports[rss2.id].line() == (
        f"feed {rss2.id} Alliances & Territoires: 2 new, 0 updated, 0 unchanged, 0 too old"
    )
    got = items(session)
    assert {(i.kind, i.status, i.source) for i in got} == {("news", "proposed", "feed")}
    assert all(i.queued_at is None and i.published_at.tzinfo is not None for i in got)
    selection = item_titled(session, "Les « Territoires d’alliances »")
    assert selection.source_name == "Alliances & Territoires"  # the feed's title
    assert selection.feed_id == rss2.id
    assert selection.source_key == "feed:urn:uuid:7d3c1f2e-odd17-selection-2027"
    assert selection.url.endswith("/selection-2027.html")
    assert selection.image_url.endswith("/selection-2027.jpg")
    assert selection.body == ""
    assert item_titled(session, "Appel à projets").source_name == "Réseau"  # --name wins
    session.refresh(rss2)
    assert rss2.name == "Alliances & Territoires" and rss2.entries_seen == 2
    assert rss2.etag and rss2.last_modified == LAST_MODIFIED
    assert rss2.last_ok_at == NOW and rss2.last_fetched_at == NOW and rss2.last_error is None
    assert {atom.id, rss1.id} <= set(reports)


def test_second_fetch_is_conditional_and_adds_nothing(site, session, settings, clock):
    feed = add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    fetch(session, settings, clock)
    clock.now = NOW + timedelta(days=1)
    report = fetch(session, settings, clock)[feed.id]
    assert report.ok and report.not_modified and report.line().endswith("not modified")
    assert site.headers_of("/feeds/rss2.xml")[1]["if-none-match"] == feed.etag
    assert len(items(session)) == 2
    session.refresh(feed)
    assert feed.last_ok_at == clock.now


def test_without_validators_a_refetch_still_adds_nothing(site, session, settings, clock):
    url = site.serve("/feeds/nodates.xml", "no_dates.xml", validators=False)
    feed = add(session, clock, url)
    fetch(session, settings, clock)
    clock.now = NOW + timedelta(days=3)
    report = fetch(session, settings, clock)[feed.id]
    assert (report.new, report.updated, report.unchanged) == (0, 0, 2)
    # Undated entries keep the date they were first seen, not each fetch's.
    assert [i.published_at for i in items(session)] == [NOW, NOW]


def test_a_changed_entry_updates_the_proposal_but_never_a_used_item(site, session, settings, clock):
    feed = add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    fetch(session, settings, clock)
    webinar = item_titled(session, "Webinaire")
    webinar.status, webinar.issue_id = "used", 7
    session.add(webinar)
    session.commit()
    site.serve("/feeds/rss2.xml", "rss2_updated_entry.xml")
    clock.now = NOW + timedelta(hours=5)
    report = fetch(session, settings, clock)[feed.id]
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    selection = item_titled(session, "Les « Territoires")
    assert selection.title.endswith("(liste complète)")
    assert selection.summary == "Treize territoires, et non douze : Rennes complète la liste."
    assert selection.updated_at == clock.now and selection.status == "proposed"
    session.refresh(webinar)
    assert webinar.title == "Webinaire : mesurer l’impact d’une alliance"
    assert webinar.status == "used"
    assert len(items(session)) == 2


def test_reject_hides_for_good_and_approve_queues(site, session, settings, clock):
    add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    fetch(session, settings, clock)
    selection = item_titled(session, "Les « Territoires")
    webinar = item_titled(session, "Webinaire")
    queue.reject_item(session, selection.id, clock)
    queue.reject_item(session, selection.id, clock)  # twice: no harm
    approved = queue.approve_item(session, webinar.id, clock, priority=3)
    assert (approved.status, approved.priority, approved.queued_at) == ("queued", 3, NOW)
    site.serve("/feeds/rss2.xml", "rss2_updated_entry.xml")  # changed, so not a 304
    fetch(session, settings, clock)
    session.refresh(selection)
    assert selection.status == "rejected" and "liste complète" not in selection.title
    assert len(items(session)) == 2
    webinar.status = "used"
    session.add(webinar)
    session.commit()
    with pytest.raises(ConflictError):
        queue.approve_item(session, webinar.id, clock)
    with pytest.raises(NotFoundError):
        queue.reject_item(session, 999, clock)


def test_an_auto_feed_queues_its_entries(site, session, settings, clock):
    add(session, clock, site.serve("/feeds/rss1.xml", "rss1_rdf.xml"), auto=True)
    fetch(session, settings, clock)
    (item,) = items(session)
    assert (item.status, item.queued_at) == ("queued", NOW)


def test_feeds_that_syndicate_each_other_give_one_item_per_entry(site, session, settings, clock):
    original = add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    copy = add(session, clock, site.serve("/feeds/copy.xml", "syndicated_copy.xml"))
    reports = fetch(session, settings, clock)
    assert reports[original.id].new == 2
    assert (reports[copy.id].new, reports[copy.id].unchanged) == (0, 2)
    assert {i.feed_id for i in items(session)} == {original.id}
    assert len(items(session)) == 2


def test_duplicates_inside_one_feed_come_in_once(site, session, settings, clock):
    feed = add(session, clock, site.serve("/feeds/dups.xml", "duplicates.xml"))
    report = fetch(session, settings, clock)[feed.id]
    assert (report.new, report.unchanged) == (2, 2)
    assert [i.title for i in items(session)] == ["Entrée A", "Entrée B"]


def test_entries_older_than_the_limit_are_not_proposed(site, session, settings, clock):
    feed = add(session, clock, site.serve("/feeds/old.xml", "old_entries.xml"))
    report = fetch(session, settings, clock)[feed.id]
    assert (report.new, report.too_old) == (1, 1)
    assert [i.title for i in items(session)] == ["Récente"]


def test_a_permanent_redirect_moves_the_feed(site, session, settings, clock):
    site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml")
    feed = add(session, clock, site.url("/moved-permanently"))
    report = fetch(session, settings, clock)[feed.id]
    assert report.moved_to == site.url("/feeds/rss2.xml")
    session.refresh(feed)
    assert feed.url == site.url("/feeds/rss2.xml")


def test_broken_feeds_are_reported_one_by_one_and_the_others_go_on(site, session, settings, clock):
    settings = dataclasses.replace(settings, feed_timeout=6.0)  # the drip must hit it
    cases = {
        "/missing": "HTTP 404 Not Found",
        "/broken": "HTTP 500 Internal Server Error",
        "/drip-body": "timed out after 6 s",
        "/huge-streamed": "too large",
        "/feeds/page.html": "not an RSS or Atom feed (got an HTML page)",
        "/feeds/laughs.xml": "nested or oversized entity",
    }
    site.serve("/feeds/page.html", "not_a_feed.html")
    site.serve("/feeds/laughs.xml", "billion_laughs.xml")
    bad = {path: add(session, clock, site.url(path)) for path in cases}
    good = add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    sloppy = add(session, clock, site.serve("/feeds/latin1.xml", "latin1_declared_utf8.xml"))
    readable = add(session, clock, site.serve("/feeds/mal.xml", "malformed_readable.xml"))
    reports = fetch(session, settings, clock)
    for path, message in cases.items():
        report = reports[bad[path].id]
        assert not report.ok and message in report.error, path
        assert report.line() == f"feed {report.feed_id} {report.url}: error: {report.error}"
        feed = session.get(Feed, bad[path].id)
        assert feed.last_error == report.error and feed.last_error_at == NOW
        assert feed.last_ok_at is None
    assert reports[good.id].ok and reports[good.id].new == 2
    assert reports[sloppy.id].ok and "encoding" in reports[sloppy.id].warning
    assert reports[readable.id].ok and reports[readable.id].new == 1
    assert "malformed XML" in reports[readable.id].line()
    assert len(items(session)) == 4


def test_a_feed_too_slow_to_parse_is_cut_at_the_timeout(site, session, settings, clock):
    # 5 MB of well-formed items: within the size cap, but feedparser (pure Python) needs
    # many times feed_timeout for it. The parse runs in a process killed at the deadline.
    item = b"<item><title>T</title><link>https://x.example.org/a</link></item>"
    body = b'<rss version="2.0"><channel><title>t</title><link>https://x.example.org/</link>'
    body += item * ((5_000_000 - len(body)) // len(item)) + b"</channel></rss>"
    site.files["/feeds/slow.xml"] = (body, "application/rss+xml", True)
    slow = add(session, clock, site.url("/feeds/slow.xml"))
    good = add(session, clock, site.serve("/feeds/rss1.xml", "rss1_rdf.xml"))
    reports = fetch(session, dataclasses.replace(settings, feed_timeout=4.0), clock)
    assert reports[slow.id].error == "parsing took longer than 4 s (refused)"
    assert reports[good.id].ok and reports[good.id].new == 1


def test_a_failing_feed_keeps_its_last_good_state(site, session, settings, clock):
    feed = add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    fetch(session, settings, clock)
    etag = feed.etag
    site.files["/feeds/rss2.xml"] = (b"<html>maintenance</html>", "text/html", False)
    clock.now = NOW + timedelta(days=1)
    report = fetch(session, settings, clock)[feed.id]
    assert not report.ok
    session.refresh(feed)
    assert (feed.etag, feed.last_ok_at, feed.entries_seen) == (etag, NOW, 2)
    assert (feed.last_error_at, feed.last_fetched_at) == (clock.now, clock.now)
    assert feed.name == "Alliances & Territoires"
    assert len(items(session)) == 2


def test_add_is_idempotent_and_checks_the_address(session, clock):
    first, created = feed_service.add_feed(session, "https://ex.org/feed", clock)
    again, created_again = feed_service.add_feed(session, " https://ex.org/feed ", clock)
    assert created and not created_again and again.id == first.id
    for bad in ("ftp://ex.org/feed", "javascript:alert(1)", "ex.org/feed", "http://"):
        with pytest.raises(InputError, match="url:"):
            feed_service.add_feed(session, bad, clock)


def test_remove_withdraws_proposals_and_keeps_the_rest(site, session, settings, clock):
    feed = add(session, clock, site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml"))
    fetch(session, settings, clock)
    webinar = item_titled(session, "Webinaire")
    queue.approve_item(session, webinar.id, clock)
    _, withdrawn = feed_service.remove_feed(session, feed.id)
    assert withdrawn == 1
    (kept,) = items(session)
    assert (kept.id, kept.status, kept.feed_id) == (webinar.id, "queued", None)
    assert feed_service.list_feeds(session) == []


# ---- hostile content, all the way to a rendered issue -------------------------------------


def test_a_hostile_feed_puts_nothing_active_in_a_rendered_issue(site, session, settings, clock):
    from newsletter.pick import Selection
    from newsletter.render import IssueInfo, render

    add(session, clock, site.serve("/feeds/hostile.xml", "hostile_scripts.xml"))
    report = next(iter(fetch(session, settings, clock).values()))
    assert report.ok and report.skipped == 2
    news = item_titled(session, "Titre")
    queue.approve_item(session, news.id, clock)
    others = {
        kind: ContentItem(kind=kind, title=f"{kind} sain", url=f"https://ex.org/{kind}")
        for kind in ("example", "tool")
    }
    issue = IssueInfo(number=1, week_key="2026-W48", thursday=date(2026, 11, 26), web_url="")
    selection = Selection(thursday=date(2026, 11, 26), chosen={"news": news, **others})
    rendered = render(issue, selection, settings)
    for html in (rendered.html, rendered.web_html):
        tree = lxml.html.fromstring(html)
        assert not tree.xpath("//script|//iframe|//object|//embed|//form|//svg")
        assert not [a for el in tree.iter() for a in el.attrib if a.lower().startswith("on")]
        links = [el.get("href") or "" for el in tree.iter("a")]
        links += [el.get("src") or "" for el in tree.iter("img")]
        assert not [u for u in links if u.strip().lower().startswith(("javascript:", "data:"))]
        assert not [u for u in links if "tracker.example" in u or "evil.example" in u]
        assert "alert(" not in tree.text_content()
    assert "Titre piégé" in rendered.text and "alert(" not in rendered.text


# ---- the command line ---------------------------------------------------------------------


def run(tmp_path, clock, *args):
    env = {"JEUDIS_HOME": str(tmp_path), "JEUDIS_FEED_TIMEOUT": "2"}
    return CliRunner().invoke(main, list(args), env=env, obj=App(clock=clock))


def test_cli_add_list_fetch_remove(site, tmp_path, clock):
    url = site.serve("/feeds/rss2.xml", "rss2_cdata_entities_fr.xml")
    added = run(tmp_path, clock, "feed", "add", url, "--name", "A&T")
    assert added.exit_code == 0 and added.output == f"feed 1 added: {url}\n"
    again = run(tmp_path, clock, "feed", "add", url)
    assert again.exit_code == 0 and "already exists" in again.output
    fetched = run(tmp_path, clock, "feed", "fetch")
    assert fetched.exit_code == 0
    assert fetched.output == "feed 1 A&T: 2 new, 0 updated, 0 unchanged, 0 too old\n"
    listed = json.loads(run(tmp_path, clock, "feed", "list", "--json").output)
    assert listed[0]["name"] == "A&T" and listed[0]["entries_seen"] == 2
    assert listed[0]["last_ok_at"] == NOW.isoformat() and listed[0]["last_error"] is None
    table = run(tmp_path, clock, "feed", "list").output
    assert "last ok: 2026-11-26T10:00:00+00:00" in table and "entries: 2" in table
    removed = run(tmp_path, clock, "feed", "remove", "1")
    assert removed.exit_code == 0 and "2 proposals withdrawn" in removed.output


def test_cli_fetch_exits_1_with_one_line_per_feed_and_no_traceback(site, tmp_path, clock):
    good = site.serve("/feeds/rss1.xml", "rss1_rdf.xml")
    run(tmp_path, clock, "feed", "add", good)
    run(tmp_path, clock, "feed", "add", site.url("/missing"))
    result = run(tmp_path, clock, "feed", "fetch")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "feed 1 Réseau des partenaires: 1 new, 0 updated, 0 unchanged, 0 too old",
        f"feed 2 {site.url('/missing')}: error: HTTP 404 Not Found",
    ]
    assert "Traceback" not in result.output
    table = run(tmp_path, clock, "feed", "list").output
    assert "last error: 2026-11-26T10:00:00+00:00 HTTP 404 Not Found" in table
    only_good = run(tmp_path, clock, "feed", "fetch", "1")
    assert only_good.exit_code == 0 and only_good.output.endswith("not modified\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["feed", "add", "ftp://ex.org/feed"], "error: url: 'ftp://ex.org/feed' must be an http"),
        (["feed", "remove", "42"], "error: feed 42: no such feed"),
        (["feed", "fetch", "42"], "error: feed 42: no such feed"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, clock, args, message):
    result = run(tmp_path, clock, *args)
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1
