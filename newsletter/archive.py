"""The public archive: the index of every issue, its Atom feed, and the whole static site.

Everything is rendered from the database, by any machine of the instance, and shows only
the issues that are public at a given moment (their scheduled send time: an issue built on
Monday appears on Thursday at 08:00). `archive_entries` and `public_issues` read the issues;
`render_index` and `render_feed` are pure (values in, text out); `publish_site` is the edge
that writes files (`jeudis publish`), and `newsletter.web.archive` serves the same pages.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from newsletter.build import render_recorded
from newsletter.config import Settings
from newsletter.files import write_atomic
from newsletter.markup import plain, safe_url
from newsletter.models import ContentItem, Issue
from newsletter.publish import (
    FEED_FILE,
    archive_url,
    feed_url,
    issue_page_path,
    issue_url,
    publish_issue,
    site_root,
)
from newsletter.render import (
    BRAND,
    MOTTO,
    SECTIONS,
    french_date,
    number_text,
    template_environment,
)
from newsletter.timetable import public_from
from newsletter.typography import NBSP, typeset

ATOM = "http://www.w3.org/2005/Atom"
INDEX_TEMPLATE = "web/archive/index.html.j2"
# An archive with no issue yet was never updated; Atom still wants a date.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ArchivedSection:
    label: str  # « L'actualité »
    title: str
    url: str | None


@dataclass(frozen=True)
class ArchiveEntry:
    """One published issue, as the index and the feed show it."""

    number: int
    week: str
    thursday_text: str  # « jeudi 26 novembre 2026 »
    thursday_iso: str
    subject: str
    url: str  # absolute
    published: datetime  # when it left (the scheduled send time, or the late build)
    sections: tuple[ArchivedSection, ...]


@dataclass(frozen=True)
class SiteReport:
    root: Path
    pages: list[Path]
    index: Path
    feed: Path


def is_public(settings: Settings, issue: Issue, now: datetime) -> bool:
    """An issue is public from its scheduled send time (or its build, if that was later)."""
    return public_from(settings, issue.thursday, issue.built_at) <= now


def public_issues(session: Session, settings: Settings, now: datetime) -> list[Issue]:
    """The issues public at `now`, newest first."""
    issues = session.exec(select(Issue).order_by(col(Issue.thursday).desc())).all()
    return [issue for issue in issues if is_public(settings, issue, now)]


def archive_entries(session: Session, settings: Settings, now: datetime) -> list[ArchiveEntry]:
    """Every issue public at `now`, newest first."""
    return [_entry(session, settings, issue) for issue in public_issues(session, settings, now)]


def _entry(session: Session, settings: Settings, issue: Issue) -> ArchiveEntry:
    ids = {"news": issue.news_id, "example": issue.example_id, "tool": issue.tool_id}
    sections = []
    for spec in SECTIONS:
        item = session.get(ContentItem, ids[spec.kind])
        if item is not None:
            title = typeset(plain(item.title))
            sections.append(ArchivedSection(spec.label, title, safe_url(item.url)))
    return ArchiveEntry(
        number=issue.number,
        week=issue.week_key,
        thursday_text=french_date(issue.thursday),
        thursday_iso=issue.thursday.isoformat(),
        subject=typeset(plain(issue.subject)) or f"{BRAND} {number_text(issue.number)}",
        url=issue_url(settings, issue.week_key),
        published=public_from(settings, issue.thursday, issue.built_at),
        sections=tuple(sections),
    )


def render_index(entries: list[ArchiveEntry], settings: Settings) -> str:
    """The archive's index page (HTML): links to each issue are relative, so the site works
    from any address; the feed and the subscription page are absolute."""
    template = template_environment(Path(settings.templates_dir)).get_template(INDEX_TEMPLATE)
    return template.render(
        brand=BRAND,
        motto=MOTTO,
        entries=entries,
        feed_url=feed_url(settings),
        subscribe_url=f"{settings.base_url.rstrip('/')}/subscribe",
    )


def _atom_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _entry_html(entry: ArchiveEntry) -> str:
    """The entry's content: the three sections as a short HTML list (escaped by etree)."""
    items = ET.Element("ul")
    for section in entry.sections:
        li = ET.SubElement(items, "li")
        strong = ET.SubElement(li, "strong")
        strong.text = section.label
        strong.tail = f"{NBSP}: "
        if section.url:
            link = ET.SubElement(li, "a", {"href": section.url})
            link.text = section.title
        else:
            strong.tail += section.title
    return ET.tostring(items, encoding="unicode", method="html")


def render_feed(entries: list[ArchiveEntry], settings: Settings) -> str:
    """The archive as an Atom 1.0 feed (RFC 4287): one entry per issue, absolute links."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "fr"})
    _sub(feed, "id", archive_url(settings))
    _sub(feed, "title", BRAND)
    _sub(feed, "subtitle", f"Le flash-info hebdomadaire du RAMEAU — {MOTTO}")
    _sub(feed, "updated", _atom_time(max((e.published for e in entries), default=EPOCH)))
    author = _sub(feed, "author")
    _sub(author, "name", "Le RAMEAU")
    _sub(feed, "link", rel="self", type="application/atom+xml", href=feed_url(settings))
    _sub(feed, "link", rel="alternate", type="text/html", href=archive_url(settings))
    for entry in entries:
        node = _sub(feed, "entry")
        _sub(node, "id", entry.url)
        _sub(node, "title", entry.subject)
        _sub(node, "link", rel="alternate", type="text/html", href=entry.url)
        _sub(node, "published", _atom_time(entry.published))
        _sub(node, "updated", _atom_time(entry.published))
        summary = " · ".join(f"{s.label}{NBSP}: {s.title}" for s in entry.sections)
        _sub(node, "summary", f"{number_text(entry.number)} du {entry.thursday_text}. {summary}")
        _sub(node, "content", _entry_html(entry), type="html")
    ET.indent(feed)
    return ET.tostring(feed, encoding="unicode", xml_declaration=True) + "\n"


def publish_archive(
    session: Session, settings: Settings, now: datetime, root: Path | None = None
) -> SiteReport:
    """Rewrite the archive index and its feed from the issues public at `now`.

    `root` defaults to $JEUDIS_HOME/site."""
    entries = archive_entries(session, settings, now)
    folder = site_root(settings, root) / "archive"
    index = write_atomic(folder / "index.html", render_index(entries, settings))
    feed = write_atomic(folder / FEED_FILE, render_feed(entries, settings))
    # The site's front door sends visitors to the archive when it is served on its own.
    write_atomic(site_root(settings, root) / "index.html", REDIRECT)
    return SiteReport(site_root(settings, root), [], index, feed)


def publish_site(
    session: Session,
    settings: Settings,
    now: datetime,
    out_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> SiteReport:
    """Write the public site as it stands at `now`: the page of every public issue
    (re-rendered from its recorded items), the index and the feed. A page an earlier run wrote
    for an issue that is not public yet is removed. Running it twice changes nothing."""
    public = {issue.week_key for issue in public_issues(session, settings, now)}
    pages = []
    issues = session.exec(select(Issue).order_by(col(Issue.thursday))).all()
    for done, issue in enumerate(issues, 1):
        if issue.week_key in public:
            rendered = render_recorded(session, settings, issue)
            pages.append(publish_issue(settings, issue.week_key, rendered, out_dir))
        else:
            _unpublish(issue_page_path(settings, issue.week_key, out_dir))
        if progress is not None:
            progress(done)
    report = publish_archive(session, settings, now, out_dir)
    return SiteReport(report.root, pages, report.index, report.feed)


def _unpublish(page: Path) -> None:
    """Remove a page published before its time (by an older version), and its folder."""
    page.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty, or already gone: leave it
        page.parent.rmdir()


REDIRECT = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0; url=archive/">
<title>Les Jeudis de l’ODD&nbsp;17</title>
</head>
<body><p><a href="archive/">Tous les numéros des Jeudis de l’ODD&nbsp;17</a></p></body>
</html>
"""
