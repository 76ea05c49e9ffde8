"""Editor Markdown -> safe HTML for the email, and -> plain text for the text part.

Everything an editor or a feed wrote goes through here before it reaches a subscriber:
Markdown is rendered with raw HTML disabled, then an allow-list sanitizer (nh3) keeps a
handful of tags and only http/https/mailto links.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

ALLOWED_TAGS = {"p", "em", "strong", "a", "ul", "ol", "li", "br", "blockquote", "code"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
LINK_SCHEMES = {"http", "https", "mailto"}
WEB_SCHEMES = ("http", "https")

# ASCII whitespace only: a no-break space (« n° 12 », « Source : ») must survive.
_BREAKS = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}  # controls and line separators
_SPACES = re.compile(r"[ \t\n\r\f\v]+")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    # Headings have no place in a three-section email: keep them as a bold paragraph.
    md.add_render_rule("heading_open", lambda *args: "<p><strong>")
    md.add_render_rule("heading_close", lambda *args: "</strong></p>\n")
    return md


def safe_url(url: str | None) -> str | None:
    """The URL stripped, if it is an absolute http(s) URL with a host; otherwise None."""
    if not url:
        return None
    candidate = url.strip()
    # Control characters and spaces can smuggle a scheme past naive parsers ("java\tscript:").
    if any(unicodedata.category(ch)[0] in "CZ" for ch in candidate):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.netloc:
        return None
    return candidate


def plain(text: str | None) -> str:
    """A single-line field (title, alt, source): no control characters, spaces collapsed."""
    if not text:
        return ""
    cleaned = "".join(" " if unicodedata.category(ch) in _BREAKS else ch for ch in text)
    return _SPACES.sub(" ", cleaned).strip()


TextPass = Callable[[str], str]


def _text_tokens(tokens: list[Token], text: TextPass | None) -> list[Token]:
    """Run `text` over the prose of the token stream: never code, URLs or attributes."""
    if text is not None:
        for token in tokens:
            for child in token.children or []:
                if child.type == "text":
                    child.content = text(child.content)
    return tokens


def to_safe_html(
    markdown: str | None, *, styles: dict[str, str] | None = None, text: TextPass | None = None
) -> str:
    """Render editor Markdown to HTML that only holds allow-listed tags and safe links.

    `styles` maps a tag to the inline style it gets (email clients ignore most <style>);
    the editor's own attributes never pass, only these fixed values. `text` (the typography
    pass) is applied to text nodes only.
    """
    if not markdown or not markdown.strip():
        return ""
    parser = _parser()
    rendered = parser.renderer.render(
        _text_tokens(parser.parse(markdown), text), parser.options, {}
    )
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=LINK_SCHEMES,
        url_relative="deny",
        link_rel="noopener",
        set_tag_attribute_values={
            tag: {"style": style} for tag, style in (styles or {}).items() if tag in ALLOWED_TAGS
        },
    ).strip()


def to_plain_text(markdown: str | None, width: int = 76, text: TextPass | None = None) -> str:
    """Render editor Markdown to wrapped plain text: links as « texte (url) », lists as « - »."""
    if not markdown or not markdown.strip():
        return ""
    tokens = _text_tokens(_parser().parse(markdown), text)
    blocks = _Blocks(width)
    blocks.walk(tokens)
    return "".join(blocks.out).strip("\n")


def wrap(text: str | None, width: int = 76, indent: str = "", first: str | None = None) -> str:
    """Wrap prose to `width` columns without ever breaking a word or a URL."""
    if not text:
        return ""
    return textwrap.fill(
        _SPACES.sub(" ", text).strip(),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class _Blocks:
    """Walks markdown-it block tokens and collects wrapped paragraphs of text."""

    def __init__(self, width: int):
        self.width = width
        self.out: list[str] = []
        self.prefix: list[str] = []  # "> " for quotes, list markers for items
        self.lists: list[list[int]] = []  # stack of [ordered?, counter]
        self.pending_marker: str | None = None
        self.hidden = False  # the current paragraph belongs to a tight list
        self.tight = False  # the next tight-list paragraph follows without a blank line

    def walk(self, tokens: list[Token]) -> None:
        for token in tokens:
            kind = token.type
            if kind == "blockquote_open":
                self.prefix.append("> ")
            elif kind == "blockquote_close":
                self.prefix.pop()
            elif kind == "paragraph_open":
                self.hidden = token.hidden
            elif kind in ("bullet_list_open", "ordered_list_open"):
                self.tight = self.tight and bool(self.lists)  # a nested list stays tight
                start = int(token.attrGet("start") or 1)
                self.lists.append([kind == "ordered_list_open", start])
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.lists.pop()
                self.tight = self.tight and bool(self.lists)
            elif kind == "list_item_open":
                ordered, counter = self.lists[-1]
                self.pending_marker = f"{counter}. " if ordered else "- "
                self.lists[-1][1] += 1
                self.prefix.append(" " * len(self.pending_marker))
            elif kind == "list_item_close":
                self.prefix.pop()
            elif kind == "inline":
                self.add(_inline_text(token.children or []))
            elif kind in ("fence", "code_block"):
                self.add_verbatim(token.content)
            elif kind == "hr":
                self.add("* * *")

    def _indents(self) -> tuple[str, str]:
        indent = "".join(self.prefix)
        first = indent
        if self.pending_marker is not None:
            # The innermost list prefix is blank padding; the first line shows the marker.
            first = indent[: -len(self.pending_marker)] + self.pending_marker
            self.pending_marker = None
        return first, indent

    def add(self, text: str) -> None:
        first, indent = self._indents()
        lines = []
        for i, part in enumerate(text.split("\n")):
            lines.append(
                wrap(part, self.width, indent, first if i == 0 else None) or indent.rstrip()
            )
        # Items of a tight list follow each other without a blank line between them.
        self._append("\n".join(lines), "\n" if self.hidden and self.tight else "\n\n")
        self.tight = self.hidden

    def _append(self, block: str, separator: str) -> None:
        self.out.append((separator if self.out else "") + block)

    def add_verbatim(self, content: str) -> None:
        first, indent = self._indents()
        lines = content.rstrip("\n").split("\n")
        text = "\n".join((first if i == 0 else indent) + line for i, line in enumerate(lines))
        self._append(text, "\n\n")
        self.tight = False


def _inline_text(children: list[Token]) -> str:
    parts: list[str] = []
    links: list[tuple[str | None, int]] = []  # (href, index in parts where the text started)
    for child in children:
        kind = child.type
        if kind in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "image":
            parts.append(plain(child.content))
        elif kind == "link_open":
            links.append((_shown_href(str(child.attrGet("href") or "")), len(parts)))
        elif kind == "link_close" and links:
            href, start = links.pop()
            label = "".join(parts[start:]).strip()
            if href and label != href:
                parts.append(f" ({href})")
    return "".join(parts)


def _shown_href(href: str) -> str | None:
    """What the text part shows for a link: the web URL, the mail address, or nothing."""
    if href.lower().startswith("mailto:"):
        address = plain(href[len("mailto:") :])
        return address if "@" in address and " " not in address else None
    return safe_url(href)
