"""render(): the email HTML, the text part and the public web copy, checked by structure."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest
from render_helpers import (
    BASE_URL,
    HEADINGS,
    WEB_URL,
    Item,
    dangerous_attributes,
    issue,
    links,
    long_items,
    parse,
    render_items,
    settings,
    simple_items,
)

from newsletter.config import PROJECT_ROOT
from newsletter.models import ContentItem
from newsletter.render import UNSUBSCRIBE_MARK, issue_subject, organisation, template_environment
from newsletter.typography import typeset

CONTENTS = "Au sommaire"


@pytest.fixture(scope="module")
def rendered():
    return render_items(simple_items())


@pytest.fixture(scope="module")
def doc(rendered):
    return parse(rendered.html)


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_email_is_french_with_title_and_preheader(rendered, doc):
    assert doc.get("lang") == "fr"
    assert doc.find(".//title").text == rendered.subject
    # The issue number leads the preheader: the subject keeps its room for the headline.
    assert rendered.preheader == (
        "N°\u00a012\u00a0– Trois régions signent une charte commune pour les alliances."
    )
    [hidden] = doc.find_class("preheader")  # the first, hidden, text of the body
    # Clients show the first text of the body in the inbox: it must be the preheader.
    assert squeeze(doc.find(".//body").text_content()).startswith(squeeze(rendered.preheader))
    assert "display:none" in hidden.get("style").replace(" ", "")
    assert squeeze(hidden.text_content()).startswith(squeeze(rendered.preheader))


def test_branded_header_with_number_french_date_and_motto(doc):
    text = squeeze(doc.text_content())
    assert squeeze(doc.find(".//h1").text_content()) == "Les Jeudis de l’ODD 17"
    assert "n° 12 · jeudi 26 novembre 2026" in text
    assert "Tous impactés, tous concernés, tous outillés" in text


def test_three_sections_in_order_with_titles_links_and_calls(doc):
    assert [squeeze(h.text_content()) for h in doc.iter("h2")] == [CONTENTS, *HEADINGS]
    items = simple_items()
    titles = list(doc.iter("h3"))
    assert len(titles) == 3
    calls = ["Lire l’actualité", "Découvrir l’exemple", "Découvrir l’outil"]
    for h3, kind, call in zip(titles, ("news", "example", "tool"), calls, strict=True):
        link = h3.find(".//a")
        assert squeeze(link.text_content()) == squeeze(typeset(items[kind].title))
        assert link.get("href") == items[kind].url
        assert [a.get("href") for a in links(doc, call)] == [items[kind].url]


def test_summary_body_and_source_are_shown(doc):
    text = squeeze(doc.text_content())
    assert "Trois régions signent une charte commune pour les alliances." in text
    assert "Source : Le RAMEAU" in text  # squeeze() turns the no-break space into a space
    body_link = links(doc, "un lien")[0]
    assert body_link.get("href") == "https://www.lerameau.fr/charte"
    assert body_link.getparent().tag == "p"
    assert "court" in [strong.text for strong in doc.iter("strong")]
    assert doc.find(".//blockquote") is not None


def test_image_has_its_alt_text_and_is_fluid(doc):
    images = doc.findall(".//img")
    assert len(images) == 1
    image = images[0]
    assert image.get("src") == "https://images.example.org/atelier.jpg"
    assert image.get("alt") == "L'atelier de réparation à Lille"
    assert int(image.get("width")) <= 560
    assert "width:100%" in image.get("style").replace(" ", "")


def test_image_without_alt_is_described_by_the_title():
    items = simple_items()
    items["tool"] = replace(items["tool"], image_url="https://images.example.org/guide.png")
    doc = parse(render_items(items).html)
    guide = [img for img in doc.iter("img") if img.get("src").endswith("guide.png")]
    assert [img.get("alt") for img in guide] == [items["tool"].title]


@pytest.mark.parametrize(
    "image_url",
    [None, "", "data:image/svg+xml,<svg onload=alert(1)>", "javascript:alert(1)", "/local.png"],
)
def test_no_image_when_missing_or_unsafe(image_url):
    items = simple_items()
    items["example"] = replace(items["example"], image_url=image_url)
    assert parse(render_items(items).html).findall(".//img") == []


def test_unsubscribe_and_view_online_links(doc):
    unsubscribe = links(doc, "Se désinscrire")
    assert [a.get("href") for a in unsubscribe] == [UNSUBSCRIBE_MARK]
    view_online = links(doc, "Voir en ligne")
    assert len(view_online) == 2  # at the top and in the footer
    assert {a.get("href") for a in view_online} == {WEB_URL}
    footer = squeeze(doc.text_content())
    assert "Vous recevez ce message car votre adresse est inscrite" in footer
    assert "Le RAMEAU" in footer


def test_subject_is_the_headline_and_leaves_the_name_to_from(rendered):
    # Found: « Les Jeudis de l'ODD 17 n°1 – … » spent 29 characters on the sender's name.
    assert rendered.subject == "Les collectivités s’engagent pour l’ODD\u00a017"


def test_long_subject_is_cut_on_a_word_within_60_characters():
    title = "Les alliances territoriales au cœur du nouveau plan national pour les ODD en 2030"
    subject = issue_subject(title)
    assert len(subject) <= 60
    assert subject.endswith("…")
    kept = subject.removesuffix("…")
    assert title.startswith(kept) and title[len(kept)] == " "


def test_short_subject_is_not_cut_and_an_editor_subject_wins():
    assert issue_subject("Un titre court") == "Un titre court"
    chosen = issue_subject("Un titre court", "Notre sélection : trois alliances")
    assert chosen == "Notre sélection\u00a0: trois alliances"


def test_a_cut_never_ends_on_an_opening_guillemet():
    title = "Un titre qui parle longuement des partenariats et du « jeu collectif »"
    subject = issue_subject(title)
    assert len(subject) <= 60 and subject.endswith("du…")


def test_heavy_issue_stays_far_below_gmail_clipping():
    rendered = render_items(long_items())
    size = len(rendered.html.encode("utf-8"))
    assert size < 102_400, size
    assert len(rendered.subject) <= 60
    assert len(rendered.preheader) <= 110 and rendered.preheader.endswith("…")
    doc = parse(rendered.html)
    assert len(doc.findall(".//img")) == 3
    assert [squeeze(h.text_content()) for h in doc.iter("h2")] == [CONTENTS, *HEADINGS]


HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(1)>"\' onmouseover="alert(1)'


def hostile_items() -> dict[str, Item]:
    def item(kind: str) -> Item:
        return Item(
            kind=kind,
            title=f"Titre {HOSTILE}",
            url="javascript:alert(1)",
            summary=f"Résumé {HOSTILE}",
            body=(
                f"{HOSTILE}\n\n[clic](javascript:alert(1)) [x](data:text/html,<script>)"
                ' <a href="vbscript:msgbox(1)" onclick="x">y</a>\n\n'
                "![img](javascript:alert(1)) <iframe src=//evil></iframe>"
            ),
            image_url="data:image/svg+xml,<svg onload=alert(1)>",
            image_alt=f'" onerror="alert(1) {HOSTILE}',
            source_name=f"Source {HOSTILE}",
        )

    items = {kind: item(kind) for kind in ("news", "example", "tool")}
    # One item with a safe image URL, so the hostile alt text reaches an <img>.
    items["tool"] = replace(items["tool"], image_url="https://images.example.org/ok.png?a=1&b=2")
    items["example"] = replace(items["example"], url="vbscript:msgbox(1)")
    return items


@pytest.mark.parametrize("part", ["html", "web_html"])
def test_hostile_items_reach_the_html_only_as_text(part):
    html = getattr(render_items(hostile_items(), issue=issue(web_url="javascript:alert(1)")), part)
    doc = parse(html)
    assert doc.findall(".//script") == [] and doc.findall(".//iframe") == []
    assert dangerous_attributes(doc) == []
    assert "<script" not in html.lower()
    # The hostile text is still visible, as text, where the editor typed it.
    titles = [squeeze(h.text_content()) for h in doc.iter("h3")]
    assert titles == [squeeze(typeset(f"Titre {HOSTILE}"))] * 3
    (image,) = doc.findall(".//img")
    assert image.get("src") == "https://images.example.org/ok.png?a=1&b=2"
    assert image.get("alt") == squeeze(f'" onerror="alert(1) {HOSTILE}')
    # Without a safe URL there is nothing to click: no title link, no call to action.
    assert links(doc, "Lire l’actualité") == [] and links(doc, "Découvrir l’exemple") == []


def test_jinja_autoescaping_shows_markup_in_titles_as_text():
    items = simple_items()
    title = "Des <b>alliances</b> & des \"partenaires\" 'solides'"
    items["news"] = replace(items["news"], title=title, summary="<i>Résumé</i> & co")
    rendered = render_items(items)
    doc = parse(rendered.html)
    assert doc.find(".//b") is None and doc.find(".//i") is None
    shown = typeset(title)  # « partenaires » and l’apostrophe, the markup left as text
    assert squeeze(doc.find(".//h3").text_content()) == squeeze(shown)
    assert "<i>Résumé</i> & co" in squeeze(doc.text_content())
    assert shown in rendered.subject
    # The text part is not HTML: the same characters stay as typed.
    assert shown in rendered.text and "&amp;" not in rendered.text


def test_web_copy_has_no_personal_link_but_archive_and_subscribe(rendered):
    assert UNSUBSCRIBE_MARK not in rendered.web_html
    doc = parse(rendered.web_html)
    hrefs = {a.get("href") for a in doc.iter("a")}
    assert f"{BASE_URL}/subscribe" in hrefs
    assert f"{BASE_URL}/archive/" in hrefs
    assert links(doc, "Se désinscrire") == []
    assert [squeeze(h.text_content()) for h in doc.iter("h2")] == [CONTENTS, *HEADINGS]
    assert doc.get("lang") == "fr"


def test_email_html_contains_the_mark_only_in_the_unsubscribe_link(rendered):
    assert rendered.html.count(UNSUBSCRIBE_MARK) == 1


def test_text_part_has_sections_links_and_the_mark_alone_on_its_line(rendered):
    text = rendered.text
    lines = text.splitlines()
    assert text.count(UNSUBSCRIBE_MARK) == 1
    mark = lines.index(UNSUBSCRIBE_MARK)  # the whole line is the mark, nothing else
    assert lines[mark - 1] == "Se désinscrire\u00a0:"
    assert f"Voir en ligne\u00a0: {WEB_URL}" in lines
    assert "n°\u00a012 · jeudi 26\u00a0novembre 2026" in lines
    flat = squeeze(text)
    for item in simple_items().values():
        assert squeeze(typeset(item.title)) in flat
        assert item.url in lines  # each link on its own line
    positions = [flat.index(f"== {heading.upper()} ==") for heading in HEADINGS]
    assert positions == sorted(positions)
    assert "texte court avec un lien (https://www.lerameau.fr/charte)" in flat
    assert "**" not in text and "<" not in text


def test_text_part_lines_are_wrapped_except_urls():
    text = render_items(long_items()).text
    assert UNSUBSCRIBE_MARK in text.splitlines()
    long_lines = [line for line in text.splitlines() if len(line) > 78]
    assert all("://" in line for line in long_lines), long_lines
    for kind, item in long_items().items():
        assert squeeze(item.title) in squeeze(text), kind
        assert item.url in text.splitlines()


def test_real_content_items_render():
    items = {
        kind: ContentItem(kind=kind, title=f"Titre {kind}", url=f"https://lerameau.fr/{kind}")
        for kind in ("news", "example", "tool")
    }
    doc = parse(render_items(items).html)
    assert [squeeze(h.text_content()) for h in doc.iter("h3")] == [
        "Titre news",
        "Titre example",
        "Titre tool",
    ]
    assert doc.findall(".//img") == []


def test_environment_is_cached_and_reloads_changed_templates(tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", templates)
    custom = settings(templates_dir=templates)
    assert template_environment(templates) is template_environment(templates)
    assert "Tous impactés" in render_items(simple_items(), settings=custom).text

    text_template = templates / "email.txt.j2"
    source = text_template.read_text(encoding="utf-8")
    text_template.write_text(source.replace("{{ motto }}", "Devise modifiée"), encoding="utf-8")
    stat = text_template.stat()
    os.utime(text_template, (stat.st_atime, stat.st_mtime + 10))  # a later edit, for sure
    assert "Devise modifiée" in render_items(simple_items(), settings=custom).text
    assert template_environment(templates).get_template("email.mjml.j2").environment.autoescape


def test_autoescape_is_on_for_markup_and_off_for_text():
    env = template_environment(PROJECT_ROOT / "templates")
    assert env.get_template("email.mjml.j2").render  # loads
    assert env.autoescape("email.mjml.j2") is True
    assert env.autoescape("page.html") is True
    assert env.autoescape("email.txt.j2") is False


def test_frame_h1_contents_footer_and_data_detector_guards(rendered, doc):
    # Found: the masthead was a <div>, the footer had no address, iOS could link the date.
    assert [squeeze(h.text_content()) for h in doc.iter("h1")] == ["Les Jeudis de l’ODD 17"]
    contents = doc.xpath('//h2[normalize-space()="Au sommaire"]/following-sibling::ul[1]/li')
    titles = [squeeze(typeset(item.title)) for item in simple_items().values()]
    assert [squeeze(li.text_content()) for li in contents] == [
        f"{label} : {title}" for label, title in zip(HEADINGS, titles, strict=True)
    ]
    footer = squeeze(doc.text_content())
    org = settings()
    for part in (org.org_name, squeeze(typeset(org.org_address)), org.contact_address):
        assert part in footer
    assert "Vos données : votre adresse ne sert qu’à vous envoyer cette lettre" in footer
    assert links(doc, org.contact_address)[0].get("href") == f"mailto:{org.contact_address}"
    meta = doc.xpath('//meta[@name="format-detection"]/@content')
    assert meta and "date=no" in meta[0] and "telephone=no" in meta[0]
    assert "a[x-apple-data-detectors]" in rendered.html
    assert "font-size:inherit" not in rendered.html.replace(" ", "")
    assert UNSUBSCRIBE_MARK in rendered.text and "Vos données" in rendered.text


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("1, allée Charles-V, 94300 Vincennes, France", "94300\u00a0Vincennes"),
        ("12 rue de la Paix, 75002 Paris", "75002\u00a0Paris"),
    ],
)
def test_the_footer_keeps_a_postcode_with_its_town(address, expected):
    """Seen at 375 px: « 1, allée Charles-V, 94300 ⏎ Vincennes, France »."""
    org = organisation(settings(org_address=address))
    assert expected in org.address
    assert org.address.startswith(address.split(",")[0])  # the street number left alone
