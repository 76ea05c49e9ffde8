"""The public web copy of each built issue: static files under `$JEUDIS_HOME/site`.

The site is plain files any web server can serve:
    archive/index.html          every issue, newest first (newsletter.archive)
    archive/feed.atom           the Atom feed of the archive (newsletter.archive)
    archive/<week>/index.html   one page per issue: the email's public copy
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import escape

from newsletter.config import Settings
from newsletter.errors import ContentError
from newsletter.files import write_atomic
from newsletter.render import BRAND, UNSUBSCRIBE_MARK, RenderedIssue

FEED_FILE = "feed.atom"
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)


def base(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def issue_url(settings: Settings, week: str) -> str:
    """The public address of an issue's page (« voir en ligne »)."""
    return f"{base(settings)}/archive/{week}/"


def archive_url(settings: Settings) -> str:
    """The public address of the archive index."""
    return f"{base(settings)}/archive/"


def feed_url(settings: Settings) -> str:
    """The public address of the archive's Atom feed."""
    return f"{base(settings)}/archive/{FEED_FILE}"


def site_root(settings: Settings, root: Path | None = None) -> Path:
    """Where the site is written: `root` if given (publish --out), else $JEUDIS_HOME/site."""
    return root if root is not None else settings.archive_dir


def issue_page_path(settings: Settings, week: str, root: Path | None = None) -> Path:
    return site_root(settings, root) / "archive" / week / "index.html"


def public_page(settings: Settings, week: str, rendered: RenderedIssue) -> str:
    """The issue's web copy, with its feed announced; refuses any personal link."""
    html = rendered.web_html
    if UNSUBSCRIBE_MARK in html or f"{base(settings)}/unsubscribe/" in html:
        # A template change must never publish someone's unsubscribe link to the world.
        raise ContentError(f"issue {week}", "web copy", "holds a personal unsubscribe link")
    link = (
        f'<link rel="alternate" type="application/atom+xml" '
        f'title="{escape(BRAND)}" href="{escape(feed_url(settings))}">'
    )
    # One substitution before the first </head>: the email markup itself is left untouched.
    return _HEAD_END.sub(lambda m: link + m.group(0), html, count=1)


def publish_issue(
    settings: Settings, week: str, rendered: RenderedIssue, root: Path | None = None
) -> Path:
    """Write (or rewrite, identically) the public page of one issue."""
    return write_atomic(
        issue_page_path(settings, week, root), public_page(settings, week, rendered)
    )
