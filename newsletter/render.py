"""Render an issue: Jinja -> MJML -> HTML for the email and the web copy, Jinja -> text.

CONTRACT (other modules rely on it):
- render(issue, selection, settings) is pure: no database, clock or files other than templates.
- RenderedIssue.html and .text contain UNSUBSCRIBE_MARK where each recipient's own
  unsubscribe URL goes; the outbox replaces it per recipient (no per-recipient Jinja/MJML).
  In .text the mark stands alone on its own line.
- RenderedIssue.web_html is the public copy: same content, no personal link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from mjml import mjml2html

from newsletter.config import Settings
from newsletter.markup import plain, safe_url, to_plain_text, to_safe_html, wrap
from newsletter.pick import Selection
from newsletter.typography import NBSP, NNBSP, typeset

UNSUBSCRIBE_MARK = "@@UNSUBSCRIBE_URL@@"

BRAND = typeset("Les Jeudis de l'ODD 17")
MOTTO = "Tous impactés, tous concernés, tous outillés"
# What a phone shows of a subject; the sender's name is left to From.
SUBJECT_MAX = 60
PREHEADER_MAX = 110
TEXT_WIDTH = 76
EMAIL_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"


@dataclass(frozen=True)
class IssueInfo:
    number: int
    week_key: str
    thursday: date
    web_url: str  # the public archive page, for « voir en ligne »
    subject: str | None = None  # the editor's own subject, if one was set for the week


@dataclass(frozen=True)
class RenderedIssue:
    subject: str
    preheader: str
    html: str
    text: str
    web_html: str


@dataclass(frozen=True)
class SectionKind:
    kind: str
    label: str  # the section heading
    call: str  # the call-to-action label
    accent: str  # the heading colour (contrast >= 4.5:1 on white)


SECTIONS = (
    SectionKind("news", "L’actualité", "Lire l’actualité", "#19486a"),
    SectionKind("example", "L’exemple inspirant", "Découvrir l’exemple", "#2f6b34"),
    SectionKind("tool", "L’outil", "Découvrir l’outil", "#a21942"),
)

# Inline styles for the editor's Markdown (mjml-python inlines nothing inside mj-text).
BODY_STYLES = {
    "a": "color:#19486a;text-decoration:underline;",
    "blockquote": (
        "margin:16px 0;padding:2px 0 2px 16px;border-left:4px solid #d9e2ec;color:#3e4c59;"
    ),
    "ul": "margin:12px 0;padding-left:24px;",
    "ol": "margin:12px 0;padding-left:24px;",
    "li": "margin:0 0 6px;",
    "code": "font-family:Menlo,Consolas,monospace;font-size:15px;background:#f0f4f8;",
}


@dataclass(frozen=True)
class SectionView:
    """What a template needs to show one item: already cleaned, escaped where needed."""

    kind: str
    label: str
    call: str
    accent: str
    title: str
    url: str | None
    summary: str
    body_html: Markup
    body_text: str
    image_url: str | None
    image_alt: str
    source_name: str


def render(issue: IssueInfo, selection: Selection, settings: Settings) -> RenderedIssue:
    """Render the week's email (HTML with the unsubscribe mark, text) and its public web copy."""
    sections = [
        section_view(spec, selection.chosen[spec.kind])
        for spec in SECTIONS
        if spec.kind in selection.chosen
    ]
    news = next((s for s in sections if s.kind == "news"), None)
    date_text = french_date(issue.thursday)
    subject = issue_subject(news.title if news else date_text, issue.subject)
    preheader = issue_preheader(issue.number, sections)
    base = settings.base_url.rstrip("/")
    context: dict[str, Any] = {
        "brand": BRAND,
        "motto": MOTTO,
        "number": issue.number,
        "number_text": number_text(issue.number),
        "org": organisation(settings),
        "date_text": date_text,
        "subject": subject,
        "preheader": preheader,
        "sections": sections,
        "web_url": safe_url(issue.web_url) or f"{base}/archive/",
        "archive_url": f"{base}/archive/",
        "subscribe_url": f"{base}/subscribe",
        "unsubscribe_url": UNSUBSCRIBE_MARK,
    }
    env = template_environment(Path(settings.templates_dir))
    email = env.get_template(EMAIL_TEMPLATE)
    html = _compile(email.render(context, public=False))
    web_html = _compile(email.render(context, public=True))
    text = env.get_template(TEXT_TEMPLATE).render(context)
    return RenderedIssue(
        subject=subject, preheader=preheader, html=html, text=text, web_html=web_html
    )


def section_view(spec: SectionKind, item: Any) -> SectionView:
    """Clean one chosen item for the templates: plain single-line fields, safe URLs only."""
    image_url = safe_url(getattr(item, "image_url", None))
    title = plain(getattr(item, "title", "")) or spec.label
    body = getattr(item, "body", "") or ""
    return SectionView(
        kind=spec.kind,
        label=spec.label,
        call=spec.call,
        accent=spec.accent,
        title=typeset(title),
        url=safe_url(getattr(item, "url", None)),
        summary=typeset(plain(getattr(item, "summary", ""))),
        body_html=Markup(to_safe_html(body, styles=BODY_STYLES, text=typeset)),
        body_text=to_plain_text(body, width=TEXT_WIDTH, text=typeset),
        image_url=image_url,
        # Every image gets an alt text; the title describes it when the editor gave none.
        image_alt=(plain(getattr(item, "image_alt", None)) or title) if image_url else "",
        source_name=typeset(plain(getattr(item, "source_name", None))),
    )


@dataclass(frozen=True)
class Organisation:
    """Who sends the letter, as the footer says it (the law wants a postal address)."""

    name: str
    address: str
    contact: str


def organisation(settings: Settings) -> Organisation:
    return Organisation(
        typeset(plain(settings.org_name)),
        _POSTCODE.sub(f"\\1{NBSP}", typeset(plain(settings.org_address))),
        plain(settings.contact_address),
    )


# A French postcode stays with its town: « 94300 ⏎ Vincennes » split the footer at 375 px.
_POSTCODE = re.compile(r"\b(\d{5}) (?=\w)")


def french_date(day: date) -> str:
    """« jeudi 26 novembre 2026 », « jeudi 1er octobre 2026 » (no break before the month)."""
    return typeset(format_date(day, format="full", locale="fr_FR"))


def number_text(number: int) -> str:
    """« n° 12 », never broken after « n° »."""
    return f"n°{NBSP}{number}"


def shorten(text: str, limit: int) -> str:
    """Cut `text` on a word boundary so that it fits in `limit` characters, ending with « … »."""
    text = plain(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    if cut.count("«") > cut.count("»"):  # never leave a quotation open: cut before it
        cut = cut[: cut.rindex("«")]
    # Never end on a no-break space or a sign that belonged to the cut word.
    return cut.rstrip(f" ,;:.–-«{NBSP}{NNBSP}") + "…"


def issue_subject(headline: str, chosen: str | None = None) -> str:
    """The editor's subject if set, else the headline; at most SUBJECT_MAX characters."""
    return shorten(typeset(plain(chosen) or headline), SUBJECT_MAX)


def issue_preheader(number: int, sections: list[SectionView]) -> str:
    """The inbox teaser: the issue number, then the news summary (or the three titles)."""
    lead = f"N°{NBSP}{number}{NBSP}– "
    news = next((s for s in sections if s.kind == "news"), None)
    if news and news.summary:
        return shorten(lead + news.summary, PREHEADER_MAX)
    titles = [s.title for s in sections]
    if not titles:
        return shorten(typeset(f"{lead}{BRAND} : {MOTTO.lower()}."), PREHEADER_MAX)
    listed = ", ".join(titles[:-1]) + " et " + titles[-1] if len(titles) > 1 else titles[0]
    return shorten(typeset(f"{lead}Cette semaine : {listed}."), PREHEADER_MAX)


@lru_cache(maxsize=8)
def template_environment(templates_dir: Path) -> Environment:
    """One Jinja environment per templates folder; it reloads templates changed on disk."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "mjml", "mjml.j2", "html.j2"),
            disabled_extensions=("txt", "txt.j2"),
            default=True,
        ),
        auto_reload=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    env.filters["typeset"] = typeset
    return env


def _compile(mjml: str) -> str:
    # fonts={}: no web-font <link> to Google; the template uses system fonts only.
    return mjml2html(mjml, disable_comments=True, fonts={})


def preview_link(settings: Settings) -> str:
    """What stands for a reader's own unsubscribe link in a preview or a test: the sign-up page."""
    return f"{settings.base_url.rstrip('/')}/subscribe"


def as_preview(rendered: RenderedIssue, settings: Settings) -> RenderedIssue:
    """The issue exactly as subscribers get it, with the sample link where theirs would go."""
    sample = preview_link(settings)
    return replace(
        rendered,
        html=rendered.html.replace(UNSUBSCRIBE_MARK, sample),
        text=rendered.text.replace(UNSUBSCRIBE_MARK, sample),
    )
