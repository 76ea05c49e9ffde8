"""The public archive on real files: issue pages, the index, the Atom feed, `jeudis publish`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
import pytest
from jeudis_cli import FIXTURES, MONDAY, REPO, run
from typography_checks import html_faults

from newsletter.archive import (
    ArchivedSection,
    ArchiveEntry,
    publish_archive,
    publish_site,
    render_feed,
)
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.errors import ContentError
from newsletter.publish import publish_issue
from newsletter.render import UNSUBSCRIBE_MARK, RenderedIssue
from newsletter.typography import faults

BASE = "https://jeudis.lerameau.example.org"
WEEKS = ["2026-W48", "2026-W49", "2026-W50"]
# Each week is built ahead of its Thursday: on the Monday before the first, then on the
# Friday after each send, the day the coming Thursday becomes the next one.
BUILT_ON = [
    MONDAY,
    datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
    datetime(2026, 12, 4, 14, 0, tzinfo=UTC),
]
LATER = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)  # all three sent: all public


def instance(home: Path, issues: int = 3):
    """Sample content, two readers, `issues` built weeks from 2026-W48; base_url is public."""
    home.mkdir(exist_ok=True)
    (home / "jeudis.toml").write_text(f'base_url = "{BASE}"\n')
    assert run(home, "import", str(REPO / "content")).exit_code == 0
    assert run(home, "subscriber", "add", "camille@example.org").exit_code == 0
    for now in BUILT_ON[:issues]:
        result = run(home, "build", now=now)
        assert result.exit_code == 0, result.output
    return load_settings({"JEUDIS_HOME": str(home)})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def local_path(root: Path, url: str) -> Path:
    """The file under `root` that serves a URL of the site."""
    path = urlsplit(url).path.lstrip("/")
    return root / path / "index.html" if path.endswith("/") or not path else root / path


def test_site_has_a_page_per_issue_an_index_and_a_feed(tmp_path):
    settings = instance(tmp_path / "home")
    out = tmp_path / "site"
    with open_session(settings) as session:
        report = publish_site(session, settings, LATER, out)
    assert sorted(p.parent.name for p in report.pages) == WEEKS

    index = lxml.html.fromstring((out / "archive" / "index.html").read_bytes())
    assert index.get("lang") == "fr"
    (alternate,) = index.xpath('//link[@rel="alternate"][@type="application/atom+xml"]')
    assert alternate.get("href") == f"{BASE}/archive/feed.atom"
    issues = index.xpath('//ol[@class="issues"]/li')
    assert [li.xpath("string(.//p[@class='issue-date'])").split(" · ")[0] for li in issues] == [
        "n°\u00a03",
        "n°\u00a02",
        "n°\u00a01",
    ]
    assert "jeudi 26\u00a0novembre 2026" in issues[-1].text_content()
    assert html_faults((out / "archive" / "index.html").read_text()) == []
    # Each index link leads to the page of its issue, from wherever the site is served.
    for li, week in zip(issues, reversed(WEEKS), strict=True):
        href = li.xpath(".//h3/a/@href")[0]
        target = local_path(out, urljoin(f"{BASE}/archive/", href))
        assert target == out / "archive" / week / "index.html" and target.exists()
        assert len(li.xpath(".//ul[@class='sections']/li")) == 3


def test_issue_page_is_the_public_copy_with_date_number_and_feed_link(tmp_path):
    settings = instance(tmp_path / "home", issues=1)
    with open_session(settings) as session:
        (page,) = publish_site(session, settings, LATER).pages
    assert page == settings.archive_dir / "archive" / "2026-W48" / "index.html"
    html = page.read_text()
    doc = lxml.html.fromstring(html)
    assert "n° 1 · jeudi 26 novembre 2026" in " ".join(doc.text_content().split())
    assert html_faults(html) == []
    assert UNSUBSCRIBE_MARK not in html and "/unsubscribe/" not in html
    assert "Se désinscrire" not in doc.text_content()
    assert doc.xpath('//link[@rel="alternate"][@type="application/atom+xml"]/@href') == [
        f"{BASE}/archive/feed.atom"
    ]
    assert len(doc.xpath("//h2")) == 4  # « Au sommaire » and the three sections


def test_feed_is_valid_atom_with_one_entry_per_issue_and_absolute_links(tmp_path):
    settings = instance(tmp_path / "home")
    with open_session(settings) as session:
        report = publish_archive(session, settings, LATER)
    feed = feedparser.parse(report.feed.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Les Jeudis de l’ODD\u00a017"
    assert feed.feed.language == "fr"
    assert {link.rel: link.href for link in feed.feed.links} == {
        "self": f"{BASE}/archive/feed.atom",
        "alternate": f"{BASE}/archive/",
    }
    assert [e.link for e in feed.entries] == [f"{BASE}/archive/{w}/" for w in reversed(WEEKS)]
    for entry in feed.entries:
        assert entry.id == entry.link
        assert entry.title and faults(entry.title) == [] and faults(entry.summary) == []
        assert entry.summary.startswith("n°\u00a0")
        assert entry.published_parsed and entry.updated_parsed
        links = lxml.html.fromstring(entry.content[0].value).xpath("//a/@href")
        assert len(links) == 3 and all(urlsplit(u).scheme == "https" for u in links)
    # The newest issue dates the feed.
    assert feed.feed.updated_parsed == feed.entries[0].updated_parsed


def test_feed_escapes_what_editors_type():
    entry = ArchiveEntry(
        number=7,
        week="2026-W48",
        thursday_text="jeudi 26 novembre 2026",
        thursday_iso="2026-11-26",
        subject='Alliances & territoires <script>alert("x")</script>',
        url=f"{BASE}/archive/2026-W48/",
        published=datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
        sections=(ArchivedSection("L'outil", "R&D <b>", "https://example.org/?a=1&b=2"),),
    )
    settings = load_settings({"JEUDIS_HOME": "/nonexistent"}, base_url=BASE)
    feed = feedparser.parse(render_feed([entry], settings).encode())
    assert not feed.bozo
    assert feed.entries[0].title == 'Alliances & territoires <script>alert("x")</script>'
    content = lxml.html.fromstring(feed.entries[0].content[0].value)
    assert content.xpath("//a/@href") == ["https://example.org/?a=1&b=2"]
    assert not content.xpath("//script|//b")


def test_empty_archive_is_still_a_valid_feed_and_index(tmp_path):
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    with open_session(settings) as session:
        report = publish_site(session, settings, LATER)
    feed = feedparser.parse(report.feed.read_bytes())
    assert not feed.bozo and feed.entries == []
    index = lxml.html.fromstring(report.index.read_bytes())
    assert "Aucun numéro" in index.text_content()


def test_publishing_twice_writes_the_same_bytes(tmp_path):
    settings = instance(tmp_path / "home", issues=2)
    assert not settings.archive_dir.exists()  # a build publishes nothing by itself
    with open_session(settings) as session:
        publish_site(session, settings, LATER)
        first = snapshot(settings.archive_dir)
        publish_site(session, settings, LATER)
    assert snapshot(settings.archive_dir) == first
    assert "archive/2026-W48/index.html" in first and "archive/2026-W49/index.html" in first


def test_a_personal_link_is_never_published(tmp_path):
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)}, base_url=BASE)
    leaky = RenderedIssue(
        subject="s",
        preheader="p",
        html="",
        text="",
        web_html=f'<html><head></head><body><a href="{BASE}/unsubscribe/abc">x</a></body></html>',
    )
    with pytest.raises(ContentError, match="personal unsubscribe link"):
        publish_issue(settings, "2026-W48", leaky)
    marked = RenderedIssue("s", "p", "", "", f"<html><body>{UNSUBSCRIBE_MARK}</body></html>")
    with pytest.raises(ContentError):
        publish_issue(settings, "2026-W48", marked)
    assert not (settings.archive_dir / "archive" / "2026-W48").exists()


def test_publish_command_writes_the_site_where_asked(tmp_path):
    home = tmp_path / "home"
    instance(home, issues=2)
    out = tmp_path / "public"
    result = run(home, "publish", "--out", str(out), now=LATER)
    assert result.exit_code == 0, result.output
    assert "published 2 issue page(s)" in result.stdout
    assert (out / "archive" / "feed.atom").exists()
    assert (out / "archive" / "2026-W49" / "index.html").exists()
    assert lxml.html.fromstring((out / "index.html").read_bytes()).xpath("//a/@href") == [
        "archive/"
    ]


def test_publish_refuses_a_file_as_output_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    target = tmp_path / "not-a-folder"
    target.write_text("x")
    result = run(home, "publish", "--out", str(target))
    assert result.exit_code == 2
    assert "not-a-folder" in result.stderr and "Traceback" not in result.output


def test_fixture_content_builds_an_archive(tmp_path):
    """The small fixture set (one item per kind) gives one issue and a one-entry feed."""
    home = tmp_path / "home"
    assert run(home, "import", str(FIXTURES / "content" / "good")).exit_code == 0
    assert run(home, "build", "--date", "2026-12-03", now=BUILT_ON[1]).exit_code == 0
    assert run(home, "publish", now=LATER).exit_code == 0
    settings = load_settings({"JEUDIS_HOME": str(home)})
    feed = feedparser.parse((settings.archive_dir / "archive" / "feed.atom").read_bytes())
    assert not feed.bozo and len(feed.entries) == 1
