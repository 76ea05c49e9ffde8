"""Editor Markdown -> safe HTML and plain text."""

from __future__ import annotations

import lxml.html
import pytest
from render_helpers import dangerous_attributes

from newsletter.markup import plain, safe_url, to_plain_text, to_safe_html


def fragment(html: str):
    return lxml.html.fragment_fromstring(html, create_parent="div")


HOSTILE_MARKDOWN = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)" onclick="alert(2)">clic</a>',
    "[clic](javascript:alert(1))",
    "[clic](JaVaScRiPt:alert(1))",
    "[clic](java\tscript:alert(1))",
    "[clic](&#106;avascript:alert(1))",
    "[clic](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[clic](vbscript:msgbox(1))",
    "<javascript:alert(1)>",
    "![image](javascript:alert(1))",
    '![image](https://example.org/a.png "onerror=alert(1)")',
    '[clic](https://example.org/ "x" onmouseover="alert(1)")',
    "<iframe src=https://evil.example></iframe><svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "```html\n<script>alert(1)</script>\n```",
    "[ref]\n\n[ref]: javascript:alert(1)",
]


@pytest.mark.parametrize("markdown", HOSTILE_MARKDOWN)
def test_hostile_markdown_never_becomes_active_html(markdown):
    doc = fragment(to_safe_html(markdown))
    tags = {element.tag for element in doc.iter() if isinstance(element.tag, str)}
    assert tags <= {"div", "p", "em", "strong", "a", "ul", "ol", "li", "br", "blockquote", "code"}
    assert dangerous_attributes(doc) == []
    for a in doc.iter("a"):
        assert a.get("href") is None or a.get("href").startswith(("http:", "https:", "mailto:"))


def test_allowed_markup_survives_with_noopener_links():
    html = to_safe_html(
        "Un *mot* et **un autre**, `du code`, [un lien](https://lerameau.fr/a?b=1&c=2 "
        '"Le titre") et [écrire](mailto:contact@lerameau.fr).\n\n'
        "- un\n- deux\n\n1. premier\n\n> citation\n\nligne  \ncoupée"
    )
    doc = fragment(html)
    assert doc.find(".//em").text == "mot"
    assert doc.find(".//strong").text == "un autre"
    assert doc.find(".//code").text == "du code"
    web, mail = doc.findall(".//a")
    assert web.get("href") == "https://lerameau.fr/a?b=1&c=2"
    assert web.get("title") == "Le titre"
    assert web.get("rel") == "noopener"
    assert mail.get("href") == "mailto:contact@lerameau.fr"
    assert [li.text for li in doc.iter("li")] == ["un", "deux", "premier"]
    assert doc.find(".//blockquote") is not None
    assert doc.find(".//br") is not None


def test_other_markdown_is_reduced_to_allowed_tags():
    doc = fragment(
        to_safe_html("# Titre\n\n![photo](https://example.org/p.jpg)\n\n---\n\n[rel](/page)")
    )
    assert doc.find(".//h1") is None and doc.find(".//img") is None and doc.find(".//hr") is None
    assert doc.find(".//strong").text == "Titre"  # a heading becomes a bold paragraph
    assert doc.find(".//a").get("href") is None  # a relative link means nothing in an email


def test_raw_html_is_shown_as_text_not_markup():
    doc = fragment(to_safe_html("Un <b>gras</b> & <em>penché</em>"))
    assert doc.find(".//b") is None and doc.find(".//em") is None
    assert doc.text_content().strip() == "Un <b>gras</b> & <em>penché</em>"


def test_styles_are_fixed_values_the_editor_cannot_set():
    html = to_safe_html(
        '[lien](https://a.org) <a style="color:red">x</a>', styles={"a": "color:#123"}
    )
    doc = fragment(html)
    assert [a.get("style") for a in doc.iter("a")] == ["color:#123"]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JAVASCRIPT:alert(1)",
        "java\tscript:alert(1)",
        "data:image/png;base64,AAAA",
        "vbscript:msgbox(1)",
        "mailto:a@b.fr",
        "ftp://example.org/f",
        "//example.org/x",
        "/relative",
        "https://",
        "https://exa mple.org/",
        "https://example.org/\u202eevil",
        "",
        None,
    ],
)
def test_safe_url_refuses_anything_but_absolute_http(url):
    assert safe_url(url) is None


def test_safe_url_keeps_http_and_https():
    assert safe_url(" https://lerameau.fr/a?b=1&c=2#x ") == "https://lerameau.fr/a?b=1&c=2#x"
    assert safe_url("HTTP://lerameau.fr") == "HTTP://lerameau.fr"


def test_plain_makes_one_clean_line_and_keeps_no_break_spaces():
    assert plain("  Un\ttitre\nsur\r\ndeux lignes\x00 ") == "Un titre sur deux lignes"
    assert plain("n°\u00a012 :\u2028suite") == "n°\u00a012 : suite"
    assert plain(None) == ""


def test_plain_text_shows_links_lists_and_no_markup():
    text = to_plain_text(
        "Un **texte** avec [un lien](https://lerameau.fr/x) et [écrire](mailto:a@lerameau.fr), "
        "<https://lerameau.fr/auto> et [piège](javascript:alert(1)).\n\n"
        "- premier\n- second\n  - imbriqué\n\n3. trois\n4. quatre\n\n> citation"
    )
    assert text == (
        "Un texte avec un lien (https://lerameau.fr/x) et écrire (a@lerameau.fr),\n"
        "https://lerameau.fr/auto et [piège](javascript:alert(1)).\n"
        "\n"
        "- premier\n"
        "- second\n"
        "  - imbriqué\n"
        "\n"
        "3. trois\n"
        "4. quatre\n"
        "\n"
        "> citation"
    )


def test_plain_text_wraps_prose_but_never_breaks_a_url():
    url = "https://www.lerameau.fr/publications/un-tres-long-chemin/" + "x" * 60
    markdown = ("Une phrase assez longue pour être repliée plusieurs fois. " * 6) + f"[Lien]({url})"
    markdown += "\n\n- " + "élément de liste très long " * 6
    lines = to_plain_text(markdown).splitlines()
    assert any(url in line for line in lines)
    for line in lines:
        assert len(line) <= 76 or url in line
    list_lines = [line for line in lines if "élément" in line]
    assert list_lines[0].startswith("- ") and all(x.startswith("  ") for x in list_lines[1:])


def test_empty_bodies_render_to_nothing():
    assert to_safe_html("") == "" and to_safe_html("  \n") == "" and to_safe_html(None) == ""
    assert to_plain_text("") == "" and to_plain_text(None) == ""
