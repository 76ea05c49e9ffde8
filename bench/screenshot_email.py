"""Render a sample issue and screenshot it at 375 px and 600 px with headless Chromium.

Usage: python bench/screenshot_email.py [--out375 PATH] [--out600 PATH] [--html PATH]
Prints the HTML size and fails (exit 1) if a width scrolls horizontally.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from playwright.sync_api import sync_playwright

from newsletter.config import Settings
from newsletter.pick import Selection
from newsletter.queue import ItemFields
from newsletter.render import IssueInfo, RenderedIssue, render

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class SampleItem(ItemFields):
    """An item as render() reads it: the editor's fields and, from a feed, its source."""

    source_name: str | None = None


IMAGE_URL = "https://images.example.org/atelier-velo.svg"

# A tiny SVG served by the script stands in for an editor's image: no network needed.
_SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' width='1072' height='480'>"
    "<rect width='1072' height='480' fill='#d9e8f2'/>"
    "<circle cx='536' cy='240' r='150' fill='#19486a'/>"
    "<text x='536' y='262' font-size='64' font-family='sans-serif' fill='white' "
    "text-anchor='middle'>ODD 17</text></svg>"
)

SAMPLE = {
    "news": SampleItem(
        kind="news",
        title="Les alliances territoriales au cœur du nouveau plan national pour les ODD",
        url="https://www.lerameau.fr/actualite/plan-national-odd",
        summary=(
            "Le gouvernement publie sa feuille de route 2030 : les coopérations entre "
            "associations, entreprises et collectivités y deviennent un levier central."
        ),
        body=(
            "La feuille de route reconnaît pour la première fois le rôle des **alliances "
            "d'intérêt général** dans l'atteinte des Objectifs de développement durable.\n\n"
            "Trois mesures retiennent l'attention :\n\n"
            "- un fonds d'amorçage pour les coopérations territoriales ;\n"
            "- un observatoire partagé des partenariats ;\n"
            "- la formation des agents publics au *co-développement*.\n\n"
            "Le texte complet est disponible sur [le site du ministère]"
            "(https://www.ecologie.gouv.fr/odd)."
        ),
        source_name="Le RAMEAU",
    ),
    "example": SampleItem(
        kind="example",
        title="À Lille, une entreprise et une association réinventent l'insertion par le vélo",
        url="https://www.lerameau.fr/exemples/lille-velo-insertion",
        summary=(
            "Un atelier de réparation solidaire, né d'un partenariat entre une PME de "
            "logistique et une association d'insertion, emploie aujourd'hui vingt personnes."
        ),
        body=(
            "« Nous avions des vélos de livraison à entretenir, ils avaient des talents à "
            "révéler », résume la directrice de l'association.\n\n"
            "> Une alliance réussie, c'est d'abord un besoin partagé.\n\n"
            "Le projet a été accompagné par la collectivité, qui met un local à disposition."
        ),
        image_url=IMAGE_URL,
        image_alt="L'atelier de réparation de vélos solidaire à Lille",
    ),
    "tool": SampleItem(
        kind="tool",
        title="Le guide pratique pour construire une alliance en cinq étapes",
        url="https://www.lerameau.fr/outils/guide-alliances",
        summary="Un guide gratuit pour passer de l'intention au partenariat, fiches à l'appui.",
        body=(
            "1. Diagnostiquer les besoins du territoire\n"
            "2. Identifier les partenaires\n"
            "3. Co-construire le projet\n"
            "4. Piloter et évaluer\n"
            "5. Essaimer"
        ),
    ),
}


def sample_issue() -> RenderedIssue:
    """Render the sample issue n°12 of Thursday 26 November 2026."""
    thursday = date(2026, 11, 26)
    issue = IssueInfo(
        number=12,
        week_key="2026-W48",
        thursday=thursday,
        web_url="https://jeudis.lerameau.example.org/archive/2026-W48/",
    )
    settings = Settings(templates_dir=ROOT / "templates")
    return render(issue, Selection(thursday=thursday, chosen=dict(SAMPLE)), settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out375", type=Path, default=ROOT / "docs/screenshots/email-375.png")
    parser.add_argument("--out600", type=Path, default=ROOT / "docs/screenshots/email-600.png")
    parser.add_argument("--html", type=Path, help="also write the rendered HTML here")
    args = parser.parse_args(argv)

    rendered = sample_issue()
    print(f"subject: {rendered.subject} ({len(rendered.subject)} chars)")
    print(f"html: {len(rendered.html.encode()):,} bytes, text: {len(rendered.text.encode()):,}")
    if args.html:
        args.html.write_text(rendered.html, encoding="utf-8")

    failures = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for width, out in ((375, args.out375), (600, args.out600)):
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
                page.set_content(rendered.html, wait_until="load")
                scroll = page.evaluate("document.documentElement.scrollWidth")
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True)
                status = "ok" if scroll <= width else "HORIZONTAL SCROLL"
                print(f"{width}px: scrollWidth={scroll} {status} -> {out}")
                failures += scroll > width
                page.close()
        finally:
            browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
