"""Render a sample issue and screenshot it at 320, 375 and 600 px with headless Chromium.

Usage: python bench/screenshot_email.py [--out FOLDER] [--html PATH]
Writes FOLDER/email-<width>.png (default docs/screenshots), prints the HTML size, and fails
(exit 1) if a width scrolls horizontally or breaks a line badly in French (bench/line_breaks.js).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

from playwright.sync_api import sync_playwright

from newsletter.config import Settings
from newsletter.content import parse_content
from newsletter.pick import Selection
from newsletter.queue import ItemFields
from newsletter.render import IssueInfo, RenderedIssue, render

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (320, 375, 600)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


IMAGE_URL = "https://images.example.org/atelier-velo.svg"

# A tiny SVG served by the script stands in for an editor's image: no network needed.
_SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' width='1072' height='480'>"
    "<rect width='1072' height='480' fill='#d9e8f2'/>"
    "<circle cx='536' cy='240' r='150' fill='#19486a'/>"
    "<text x='536' y='262' font-size='64' font-family='sans-serif' fill='white' "
    "text-anchor='middle'>ODD 17</text></svg>"
)

# Real items of content/, chosen for what breaks badly in French: « guillemets » with a
# colon after them, « 1 000 », « ! » inside a quotation, percentages.
SAMPLE_FILES = {
    "news": "news/observatoire-jouer-collectif.md",
    "example": "examples/ecosystemes-territoriaux-catalyseurs.md",
    "tool": "tools/parcours-alliances-et-territoires.md",
}
# The first of a month, to show « jeudi 1er octobre ».
THURSDAY = date(2026, 10, 1)
LINE_BREAKS_JS = (ROOT / "bench" / "line_breaks.js").read_text(encoding="utf-8")


def sample_items() -> dict[str, ItemFields]:
    items = {}
    for kind, name in SAMPLE_FILES.items():
        path = ROOT / "content" / name
        items[kind] = parse_content(path.read_text(encoding="utf-8"), str(path))
    items["example"] = replace(
        items["example"], image_url=IMAGE_URL, image_alt="Des acteurs d’un territoire réunis"
    )
    return items


def sample_issue() -> RenderedIssue:
    """Render the sample issue n°12 of Thursday 1 October 2026 from real content items."""
    issue = IssueInfo(
        number=12,
        week_key="2026-W40",
        thursday=THURSDAY,
        web_url="https://jeudis.lerameau.example.org/archive/2026-W40/",
    )
    settings = Settings(templates_dir=ROOT / "templates")
    return render(issue, Selection(thursday=THURSDAY, chosen=sample_items()), settings)


def shoot(browser, html: str, width: int, out: Path) -> int:
    """Screenshot `html` at `width`; print and count horizontal scroll and bad line breaks."""
    page = browser.new_page(viewport={"width": width, "height": 800})
    # Serve the sample picture locally; block every other request.
    page.route(
        "**/*",
        lambda route: (
            route.fulfill(content_type="image/svg+xml", body=_SVG)
            if route.request.url == IMAGE_URL
            else route.abort()
        ),
    )
    page.set_content(html, wait_until="load")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    breaks = page.evaluate(LINE_BREAKS_JS)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    status = "ok" if scroll <= width else "HORIZONTAL SCROLL"
    print(f"{width}px: scrollWidth={scroll} {status}, bad line breaks: {len(breaks)} -> {out}")
    for snippet in breaks:
        print(f"  bad break: {snippet!r}")
    page.close()
    return (scroll > width) + len(breaks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshots", help="folder")
    parser.add_argument("--html", type=Path, help="also write the rendered HTML here")
    args = parser.parse_args(argv)

    rendered = sample_issue()
    print(f"subject: {rendered.subject} ({len(rendered.subject)} chars)")
    print(f"preheader: {rendered.preheader}")
    print(f"html: {len(rendered.html.encode()):,} bytes, text: {len(rendered.text.encode()):,}")
    if args.html:
        args.html.write_text(rendered.html, encoding="utf-8")

    failures = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for width in WIDTHS:
                failures += shoot(browser, rendered.html, width, args.out / f"email-{width}.png")
        finally:
            browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
