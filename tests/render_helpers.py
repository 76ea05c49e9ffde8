"""Shared builders for the render tests: items, an issue, settings, and HTML checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import lxml.html

from newsletter.config import PROJECT_ROOT, Settings
from newsletter.pick import Selection
from newsletter.queue import ItemFields
from newsletter.render import IssueInfo, RenderedIssue, render

THURSDAY = date(2026, 11, 26)
WEB_URL = "https://jeudis.example.org/archive/2026-W48/"
BASE_URL = "https://jeudis.example.org"
HEADINGS = ["L’actualité", "L’exemple inspirant", "L’outil"]
DANGEROUS_SCHEMES = ("javascript:", "data:", "vbscript:")


@dataclass(frozen=True)
class Item(ItemFields):
    """An item as render() reads it: the editor's fields and, from a feed, its source."""

    source_name: str | None = None


def settings(**overrides) -> Settings:
    values = {"templates_dir": PROJECT_ROOT / "templates", "base_url": BASE_URL}
    values.update(overrides)
    return Settings(**values)


def issue(number: int = 12, web_url: str = WEB_URL) -> IssueInfo:
    return IssueInfo(number=number, week_key="2026-W48", thursday=THURSDAY, web_url=web_url)


def simple_items() -> dict[str, Item]:
    return {
        "news": Item(
            kind="news",
            title="Les collectivités s'engagent pour l'ODD 17",
            url="https://www.lerameau.fr/actualite/collectivites",
            summary="Trois régions signent une charte commune pour les alliances.",
            body="Un texte **court** avec [un lien](https://www.lerameau.fr/charte).",
            source_name="Le RAMEAU",
        ),
        "example": Item(
            kind="example",
            title="Un atelier vélo solidaire à Lille",
            url="https://www.lerameau.fr/exemples/velo",
            summary="Une PME et une association d'insertion réparent ensemble.",
            body="> Une alliance, c'est d'abord un besoin partagé.",
            image_url="https://images.example.org/atelier.jpg",
            image_alt="L'atelier de réparation à Lille",
        ),
        "tool": Item(
            kind="tool",
            title="Le guide des alliances en cinq étapes",
            url="https://www.lerameau.fr/outils/guide",
            summary="Un guide gratuit, fiches à l'appui.",
            body="1. Diagnostiquer\n2. Identifier\n3. Co-construire",
        ),
    }


def long_body(topic: str) -> str:
    """About 3,500 characters of editor Markdown: paragraphs, a list, links, a quote."""
    paragraph = (
        f"Dans le cadre de {topic}, les acteurs du territoire ont engagé une démarche de "
        "co-construction associant associations, entreprises et collectivités. "
        "[Le rapport complet](https://www.lerameau.fr/publications/rapport-2026?source=jeudis) "
        "détaille les **enseignements** et les *conditions de réussite* de ces alliances."
    )
    items = "\n".join(
        f"- Enseignement n°{n} : une gouvernance partagée et des objectifs communs"
        for n in range(1, 9)
    )
    quote = "> « Nous avons appris à nous parler avant d'agir ensemble. »"
    return "\n\n".join([paragraph] * 6 + [items, quote] + [paragraph] * 3)


def long_items() -> dict[str, Item]:
    """A realistic heavy week: long titles, long summaries, long bodies, images."""
    items = {}
    for kind, topic in (("news", "la loi"), ("example", "ce projet"), ("tool", "ce guide")):
        items[kind] = Item(
            kind=kind,
            title=(
                f"Un titre particulièrement long pour {topic} qui décrit une alliance "
                "entre associations, entreprises et collectivités territoriales en France"
            ),
            url=f"https://www.lerameau.fr/{kind}/un-chemin-assez-long-pour-etre-realiste-2026",
            summary=(
                "Un résumé de deux phrases qui présente l'essentiel de l'information. "
                "Il donne envie de lire la suite sans tout dévoiler, comme il se doit. " * 2
            ).strip(),
            body=long_body(topic),
            image_url=f"https://images.example.org/{kind}/illustration-2026.jpg",
            image_alt=f"Illustration pour {topic}",
            source_name="Le RAMEAU",
        )
    return items


def render_items(items: dict, **kwargs) -> RenderedIssue:
    selection = Selection(thursday=THURSDAY, chosen=items)
    return render(kwargs.pop("issue", issue()), selection, kwargs.pop("settings", settings()))


def parse(html: str):
    return lxml.html.document_fromstring(html)


def dangerous_attributes(doc) -> list[str]:
    """Every event-handler attribute or script-scheme value found in the parsed document."""
    found = []
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        for name, value in element.attrib.items():
            squeezed = "".join(value.split()).lower()
            if name.lower().startswith("on"):
                found.append(f"<{element.tag} {name}>")
            elif any(scheme in squeezed for scheme in DANGEROUS_SCHEMES):
                found.append(f"<{element.tag} {name}={value!r}>")
    return found


def links(doc, text: str) -> list:
    """The <a> elements whose visible text is `text` (whitespace-normalised)."""
    return [a for a in doc.iter("a") if " ".join(a.text_content().split()) == text]
