"""The typography pass: golden strings from real sentences of content/, URLs untouched."""

from __future__ import annotations

from datetime import date

import pytest
from jeudis_cli import REPO, run
from typography_checks import html_faults

from newsletter.build import calendar, preview_issue
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.markup import to_plain_text, to_safe_html
from newsletter.render import SUBJECT_MAX, french_date
from newsletter.typography import NBSP, NNBSP, faults, typeset

# (as the editor typed it in content/, as a reader must see it)
GOLDEN = [
    (
        "« Jouer collectif » : un large consensus selon l’Observatoire des partenariats",
        f"«{NBSP}Jouer collectif{NBSP}»{NBSP}: un large consensus selon l’Observatoire"
        " des partenariats",
    ),
    (
        "La base IMPACT-Alliances recense plus de 1 000 exemples inspirants, dont 650 "
        "dynamiques partenariales. Leur richesse tient à leur variété : petites associations",
        f"La base IMPACT-Alliances recense plus de 1{NNBSP}000 exemples inspirants, dont 650 "
        f"dynamiques partenariales. Leur richesse tient à leur variété{NBSP}: petites associations",
    ),
    (
        "une personne ou une structure qui joue le rôle de « catalyseur », en réunissant",
        f"une personne ou une structure qui joue le rôle de «{NBSP}catalyseur{NBSP}»,"
        " en réunissant",
    ),
    (
        "la plateforme « L’innovation territoriale en actions ! » propose webinaires",
        f"la plateforme «{NBSP}L’innovation territoriale en actions{NNBSP}!{NBSP}» propose"
        " webinaires",
    ),
    (
        "15 démarches qui incarnent l’ODD 17 en pratique : une vitrine",
        f"15 démarches qui incarnent l’ODD{NBSP}17 en pratique{NBSP}: une vitrine",
    ),
    (
        "tandis qu’« Alliances & Territoires » raconte ce qui bouge sur le terrain.",
        f"tandis qu’«{NBSP}Alliances & Territoires{NBSP}» raconte ce qui bouge sur le terrain.",
    ),
    # Typed the quick way: straight apostrophe, « n°1 », no space before « ? » or « % ».
    (
        "Les Jeudis de l'ODD 17 n°1 : 74% des Français ont-ils raison?",
        f"Les Jeudis de l’ODD{NBSP}17 n°{NBSP}1{NBSP}: 74{NNBSP}% des Français ont-ils"
        f" raison{NNBSP}?",
    ),
    ("le 1 octobre, le 11 octobre", f"le 1er{NBSP}octobre, le 11{NBSP}octobre"),
]


@pytest.mark.parametrize(("typed", "shown"), GOLDEN)
def test_golden_sentences(typed, shown):
    assert typeset(typed) == shown
    assert typeset(shown) == shown  # idempotent: a second pass changes nothing
    assert faults(shown) == [] and faults(typed) != []


@pytest.mark.parametrize(
    "url",
    [
        "https://www.lerameau.fr/observatoire-des-partenariats/",
        "https://example.org/a?b=1&c=2:3;d!e",
        "mailto:contact@lerameau.example.org?subject=Question : oui",
        "contact@lerameau.example.org",
        "@@UNSUBSCRIBE_URL@@",
    ],
)
def test_urls_addresses_and_placeholders_are_untouched(url):
    sentence = f"Voir : {url} ! Ou bien {url}, l'adresse."
    shown = typeset(sentence)
    assert shown.count(url.split(" ")[0]) == 2
    assert shown.startswith(f"Voir{NBSP}: ") and shown.endswith("l’adresse.")


def test_markdown_html_gets_typography_in_text_nodes_only():
    body = (
        "Jugée nécessaire par :\n\n- **74 %** des Français ;\n- **92 %** des maires.\n\n"
        "Prenez un moment pour [parcourir la plateforme]"
        '(https://www.odd17.org/?a=1 "l\'ODD 17 : x")'
        " et `code : intact` !"
    )
    html = to_safe_html(body, text=typeset)
    assert "<p>Jugée nécessaire par&nbsp;:</p>" in html  # nh3 writes U+00A0 as &nbsp;
    assert f"<li><strong>74{NNBSP}%</strong> des Français{NNBSP};</li>" in html
    # Attributes (href, title) and code stay exactly as typed; the prose around them is set.
    assert 'href="https://www.odd17.org/?a=1"' in html
    assert 'title="l\'ODD 17 : x"' in html or 'title="l&#39;ODD 17 : x"' in html
    assert f"<code>code : intact</code>{NNBSP}!" in html
    text = to_plain_text(body, text=typeset)
    assert f"- 74{NNBSP}% des Français{NNBSP};" in text
    assert "(https://www.odd17.org/?a=1)" in text and "code : intact" in text


def test_first_of_the_month_reads_1er_and_the_day_keeps_its_month():
    assert french_date(date(2026, 10, 1)) == f"jeudi 1er{NBSP}octobre 2026"
    assert french_date(date(2026, 11, 26)) == f"jeudi 26{NBSP}novembre 2026"


def test_every_sample_week_reads_right(tmp_path):
    """The weeks `plan` gives with content/: subject, preheader, HTML and text pass the rules."""
    run(tmp_path, "import", str(REPO / "content"))
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    today = date(2026, 11, 23)
    with open_session(settings) as session:
        weeks = calendar(session, settings, today, 9).weeks
        assert len(weeks) == 9
        for week in weeks:
            _, selection, rendered = preview_issue(session, settings, week.thursday, today)
            headline = typeset(selection["news"].title)
            subject = rendered.subject
            assert len(subject) <= SUBJECT_MAX, subject
            assert headline.startswith(subject.removesuffix("…")), (headline, subject)
            assert "Jeudis" not in subject  # the sender's name is From's job
            assert rendered.preheader.startswith(f"N°{NBSP}{week.number}")
            assert faults(subject) == [] and faults(rendered.preheader) == []
            assert html_faults(rendered.html) == [], week.week
            assert html_faults(rendered.web_html) == [], week.week
            assert faults(rendered.text) == [], week.week
