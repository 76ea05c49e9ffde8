"""Feed parsing, pure: real feed files in, entry values out (no network, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest

from newsletter.feeds import (
    ELLIPSIS,
    FeedFormatError,
    canonical_url,
    cut_text,
    html_to_text,
    parse_feed,
    sanitize_html,
    web_url,
)

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BASE = "https://flux.example.org/feeds/"


def parse(name: str, **kwargs):
    return parse_feed((FEEDS / name).read_bytes(), BASE + name, NOW, **kwargs)


def by_title(parsed, start: str):
    return next(e for e in parsed.entries if e.title.startswith(start))


def test_rss2_french_text_entities_cdata_images_and_dates():
    feed = parse("rss2_cdata_entities_fr.xml")
    assert feed.title == "Alliances & Territoires"
    assert feed.warning is None
    selection = by_title(feed, "Les « Territoires d’alliances »")
    assert selection.title == "Les « Territoires d’alliances » sélectionnés pour 2027"
    assert selection.summary.startswith("Douze territoires rejoignent le programme : coopérations")
    assert "entreprises & collectivités, à Nantes, Besançon et Saint-Étienne." in selection.summary
    assert "l’ambition" in selection.summary and "<" not in selection.summary
    assert selection.key == "feed:urn:uuid:7d3c1f2e-odd17-selection-2027"
    assert selection.image_url == "https://www.associations.gouv.fr/images/selection-2027.jpg"
    assert selection.image_alt == selection.title
    # +01:00 in the feed, stored as the same instant, aware.
    assert selection.published_at == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert selection.dated
    webinar = by_title(feed, "Webinaire")
    assert webinar.summary == "Inscriptions ouvertes jusqu'au 3 décembre — places limitées."
    assert webinar.image_url == "https://www.associations.gouv.fr/images/webinaire.png"
    assert webinar.key == "feed:" + webinar.link


def test_atom_relative_links_become_absolute_and_updated_stands_in_for_published():
    feed = parse("atom_relative_links.xml")
    barometre = by_title(feed, "Baromètre")
    assert barometre.title == "Baromètre 2026 des partenariats"
    assert (
        barometre.link
        == "https://observatoire.example.org/territoires/articles/barometre-2026.html"
    )
    assert barometre.image_url == "https://observatoire.example.org/images/barometre.jpg"
    assert barometre.published_at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # published
    metz = by_title(feed, "Rencontre régionale")
    assert metz.link == "https://observatoire.example.org/territoires/agenda/metz.html"
    assert metz.published_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # updated only
    assert metz.summary == "Programme ici."


def test_sanitised_html_keeps_relative_links_absolute():
    html = sanitize_html('<p>Voir <a href="/donnees/a.csv">les données</a></p>', BASE)
    (link,) = lxml.html.fromstring(html).iter("a")
    assert link.get("href") == "https://flux.example.org/donnees/a.csv"


def test_rss1_rdf_with_dublin_core_date():
    feed = parse("rss1_rdf.xml")
    (entry,) = feed.entries
    assert entry.title == "Appel à projets « Coopérer pour l’emploi »"
    assert entry.link == "https://reseau-partenaires.example.org/n/1"
    assert entry.published_at == datetime(2026, 11, 19, 15, 45, tzinfo=UTC)


def test_missing_or_unreadable_dates_fall_back_to_now_and_say_so():
    feed = parse("no_dates.xml")
    assert [e.published_at for e in feed.entries] == [NOW, NOW]
    assert all(e.published_at.tzinfo is not None and not e.dated for e in feed.entries)


def test_a_date_in_the_future_is_not_believed():
    data = (FEEDS / "old_entries.xml").read_bytes().replace(b"Jun 2026", b"Jun 2031")
    feed = parse_feed(data, BASE, NOW)
    assert by_title(feed, "Ancienne").published_at == NOW


def test_duplicates_share_a_key_or_a_canonical_link():
    feed = parse("duplicates.xml")
    keys = [e.key for e in feed.entries]
    links = [e.link for e in feed.entries]
    assert keys[0] == keys[1]  # the same guid twice
    assert keys[2] != keys[0] and links[2] == links[0]  # another guid, the same page
    assert links[0] == "https://doublons.example.org/a"
    # A guid like "doublons-a" is only unique within its feed: the key says which feed.
    assert keys[0] == "feed:https://flux.example.org/feeds/duplicates.xml#doublons-a"


def test_wrong_declared_encoding_still_reads_the_accents():
    feed = parse("latin1_declared_utf8.xml")
    (entry,) = feed.entries
    assert feed.title == "Réseau Économie & Territoires"
    assert entry.title == "Élus, entreprises et associations : l'été des coopérations"
    assert "Besançon et à Orléans" in entry.summary
    assert "encoding" in feed.warning


def test_malformed_but_readable_feed_gives_its_entries_with_a_warning():
    feed = parse("malformed_readable.xml")
    (entry,) = feed.entries
    assert entry.title == "Entrée lisible malgré tout"
    assert feed.warning.startswith("malformed XML: line ")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ((FEEDS / "not_a_feed.html").read_bytes(), "HTML page"),
        (b"", "empty body"),
        (b"\x00\xff\xfe garbage \x89PNG", "not an RSS or Atom feed"),
    ],
)
def test_what_is_not_a_feed_is_refused_with_a_reason(data, reason):
    with pytest.raises(FeedFormatError, match=reason):
        parse_feed(data, BASE, NOW)


def test_billion_laughs_is_refused_before_expansion():
    with pytest.raises(FeedFormatError, match="nested or oversized entity"):
        parse("billion_laughs.xml")


def test_quadratic_blowup_is_refused():
    big = "A" * 100_000
    data = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "{big}">]>'
        '<rss version="2.0"><channel><title>q</title><link>https://q.example.org/</link>'
        f"<item><title>t</title><link>https://q.example.org/1</link>"
        f"<description>{'&big;' * 10_000}</description></item></channel></rss>"
    ).encode()
    with pytest.raises(FeedFormatError, match="oversized entity"):
        parse_feed(data, BASE, NOW)


def test_external_entities_are_refused():
    with pytest.raises(FeedFormatError, match="external"):
        parse("xxe_external_entity.xml")


def test_a_plain_declared_entity_is_harmless_and_accepted():
    (entry,) = parse("doctype_simple_entity.xml").entries
    assert entry.title == "Rencontre : alliances locales"


def test_bytes_that_look_like_a_path_are_never_opened(tmp_path):
    # feedparser.parse(bytes) would open() a file of that name; the parser must not.
    secret = tmp_path / "secret.xml"
    secret.write_bytes((FEEDS / "rss1_rdf.xml").read_bytes())
    with pytest.raises(FeedFormatError):
        parse_feed(str(secret).encode(), BASE, NOW)


def test_hostile_entry_html_leaves_nothing_active():
    feed = parse("hostile_scripts.xml")
    assert feed.title == "Flux hostile"
    assert feed.skipped == 2  # the javascript: and data: entry links
    article = by_title(feed, "Titre")
    assert article.title == "Titre piégé"
    assert "alert" not in article.summary and "document.cookie" not in article.summary
    assert "display:none" not in article.summary
    assert article.summary.startswith("Texte gras lien js")
    assert article.image_url is None  # the 1x1 media:thumbnail is a tracking pixel
    assert by_title(feed, "Image en javascript").image_url is None
    assert all(e.link.startswith("https://") for e in feed.entries)


def test_sanitiser_allow_list_on_the_hostile_description():
    raw = (FEEDS / "hostile_scripts.xml").read_text()
    start = raw.index("<![CDATA[<p onclick") + len("<![CDATA[")
    html = sanitize_html(raw[start : raw.index("]]>", start)], "https://hostile.example.org/")
    tree = lxml.html.fragment_fromstring(html, create_parent="div")
    tags = {el.tag for el in tree.iter()}
    forbidden = {"script", "style", "iframe", "object", "embed", "svg", "img", "form", "meta"}
    assert not tags & forbidden
    for el in tree.iter():
        assert not [name for name in el.attrib if name.lower().startswith("on") or name == "style"]
    hrefs = [a.get("href") for a in tree.iter("a") if a.get("href")]
    assert hrefs == ["https://hostile.example.org/sain"]
    assert all(a.get("rel") == "noopener noreferrer nofollow" for a in tree.iter("a"))


def test_html_to_text_decodes_entities_and_drops_scripts():
    assert html_to_text("<p>A&amp;B&nbsp;&eacute;t&eacute;</p><script>x()</script><p>C</p>") == (
        "A&B\xa0été C".replace("\xa0", " ")
    )


@pytest.mark.parametrize("limit", [10, 30, 61, 280])
def test_cut_text_ends_on_a_word_with_an_ellipsis(limit):
    text = "Les alliances entre associations, entreprises et collectivités transforment " * 8
    cut = cut_text(text, limit)
    assert len(cut) <= limit and cut.endswith(ELLIPSIS)
    kept = cut[: -len(ELLIPSIS)]
    assert kept and text.startswith(kept)
    assert text[len(kept)] in " ,"  # the cut fell between two words


def test_cut_text_leaves_short_text_alone_and_cuts_a_giant_word_hard():
    assert cut_text("Court.", 280) == "Court."
    assert cut_text("x" * 500, 20) == "x" * 19 + ELLIPSIS
    assert cut_text("Les alliances", 10) == "Les" + ELLIPSIS


def test_summary_is_cut_to_the_configured_length():
    feed = parse("rss2_cdata_entities_fr.xml", summary_max_chars=60)
    summary = by_title(feed, "Les « Territoires").summary
    assert len(summary) <= 60 and summary.endswith(ELLIPSIS)
    assert summary == "Douze territoires rejoignent le programme : coopérations…"


def test_canonical_url_drops_tracking_and_fragment_only():
    assert canonical_url("https://EX.org:443/a?utm_source=rss&id=3&utm_medium=x#top") == (
        "https://ex.org/a?id=3"
    )
    assert canonical_url("http://ex.org:8080/a?b=%20c") == "http://ex.org:8080/a?b=%20c"


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", " java\tscript:alert(1)", "data:text/html,x", "vbscript:x", "ftp://x/"],
)
def test_web_url_refuses_what_is_not_a_web_page(value):
    assert web_url(value, BASE) is None


def test_web_url_resolves_relative_links():
    assert web_url("../a.html", BASE) == "https://flux.example.org/a.html"


def test_too_old_is_left_to_the_caller_but_dates_are_there():
    feed = parse("old_entries.xml")
    old = by_title(feed, "Ancienne")
    assert old.dated and NOW - old.published_at > timedelta(days=30)
