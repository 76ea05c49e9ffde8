"""Look at rendered pages as a reader would: every block of text must pass the French rules."""

from __future__ import annotations

import lxml.html

from newsletter.typography import faults

# Elements whose whole text is read as one run (inline tags inside them are joined).
BLOCKS = {"title", "h1", "h2", "h3", "p", "li", "a", "td", "div", "blockquote", "time"}


def html_faults(html: str) -> list[str]:
    """Typography faults in the text of an HTML page (never its attributes, styles or URLs)."""
    doc = lxml.html.fromstring(html)
    found = []
    for element in doc.iter(*BLOCKS):
        if any(child.tag in BLOCKS for child in element.iterdescendants()):
            continue  # its text is checked in its own blocks, not glued across them
        found += faults(element.text_content())
    return found
