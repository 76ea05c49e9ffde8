"""Render an issue: Jinja -> MJML -> HTML for the email and the web copy, Jinja -> text.

CONTRACT (other modules rely on it):
- render(issue, selection, settings) is pure: no database, clock or files other than templates.
- RenderedIssue.html and .text contain UNSUBSCRIBE_MARK where each recipient's own
  unsubscribe URL goes; the outbox replaces it per recipient (no per-recipient Jinja/MJML).
- RenderedIssue.web_html is the public copy: same content, no personal link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

UNSUBSCRIBE_MARK = "@@UNSUBSCRIBE_URL@@"


@dataclass(frozen=True)
class IssueInfo:
    number: int
    week_key: str
    thursday: date
    web_url: str  # the public archive page, for « voir en ligne »


@dataclass(frozen=True)
class RenderedIssue:
    subject: str
    preheader: str
    html: str
    text: str
    web_html: str
