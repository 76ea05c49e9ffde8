"""The public web copy of each built issue: static files under `$JEUDIS_HOME/site`."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import Settings
from newsletter.files import write_atomic
from newsletter.render import RenderedIssue


def issue_url(settings: Settings, week: str) -> str:
    """The public address of an issue's page (« voir en ligne »)."""
    return f"{settings.base_url.rstrip('/')}/archive/{week}/"


def issue_page_path(settings: Settings, week: str) -> Path:
    return settings.archive_dir / "archive" / week / "index.html"


def publish_issue(settings: Settings, week: str, rendered: RenderedIssue) -> Path:
    """Write (or rewrite, identically) the public page of one issue."""
    return write_atomic(issue_page_path(settings, week), rendered.web_html)
