"""Message assembly: spliced bytes make a correct message, equal to the email package's."""

from __future__ import annotations

import email
import email.policy
import html
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime

import lxml.html
import pytest

from newsletter.config import Settings
from newsletter.delivery.message import (
    compose,
    compose_simple,
    dump_template,
    load_template,
    message_id_for,
    personalize,
    unsubscribe_mailto,
    unsubscribe_url,
)
from newsletter.errors import ContentError
from newsletter.render import UNSUBSCRIBE_MARK, RenderedIssue

WEEK = "2026-W48"
DATE = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
SUBJECT = "Les Jeudis de l'ODD 17 n°48 : une alliance réussie à Lyon, entre écoles et entreprises"

PARAGRAPH = (
    "À Lyon, une école d'ingénieurs, deux PME de l'économie sociale et solidaire et la "
    "métropole ont signé une convention de coopération : « Nous avons appris à nous parler "
    "avant d'agir ensemble », résume Hélène, coordinatrice du projet. Résultat : 120 élèves "
    "accompagnés, des stages co-construits et un comité de pilotage où chacun a sa voix."
)


def realistic_issue(paragraphs: int = 8) -> RenderedIssue:
    """Hand-written content shaped like render()'s: long accented lines, the mark in both parts."""
    text = "\n".join(
        ["LES JEUDIS DE L'ODD 17 — n°48, jeudi 26 novembre 2026", "", "L'ACTUALITÉ", ""]
        + [PARAGRAPH, ""] * paragraphs
        + [
            "Lire l'actualité : https://www.lerameau.fr/actualite/alliances?utm=jeudis&n=48",
            "",
            "Voir en ligne : https://jeudis.example.org/archive/2026-W48/",
            "Se désinscrire :",
            UNSUBSCRIBE_MARK,
            "",
            "Le RAMEAU · Tous impactés, tous concernés, tous outillés",
        ]
    )
    body = "".join(f'<p style="margin:0 0 12px;">{html.escape(PARAGRAPH)}</p>' for _ in range(3))
    page = (
        '<!doctype html>\n<html lang="fr">\n<head><meta charset="utf-8">'
        "<title>Les Jeudis de l'ODD 17</title></head>\n<body>\n"
        '<div style="display:none">Une alliance réussie à Lyon, un exemple et un outil</div>\n'
        + f'<table role="presentation" width="100%"><tr><td>{body}</td></tr></table>\n'
        * paragraphs
        + '<p><a href="https://jeudis.example.org/archive/2026-W48/">Voir en ligne</a> · '
        f'<a href="{UNSUBSCRIBE_MARK}" style="color:#52606d;">Se désinscrire</a></p>\n'
        "</body>\n</html>\n"
    )
    return RenderedIssue(
        subject=SUBJECT, preheader="Une alliance", html=page, text=text, web_html=""
    )


def settings(**overrides) -> Settings:
    values = {"base_url": "https://jeudis.example.org", "reply_to": "contact@lerameau.example.org"}
    values.update(overrides)
    return Settings(**values)


def one_message(rendered: RenderedIssue, *, name: str = "Zoé Lefèvre-Dupont", token="42.abc"):
    cfg = settings()
    template = compose(rendered, settings=cfg, issue_week=WEEK)
    data = personalize(
        template,
        recipient_email="zoe@example.org",
        recipient_name=name,
        message_id=message_id_for(WEEK, 42, "lerameau.example.org"),
        unsubscribe_url=unsubscribe_url(cfg, token),
        unsubscribe_mailto=unsubscribe_mailto(cfg, token),
        date=DATE,
    )
    return data, email.message_from_bytes(data, policy=email.policy.default)


def normalised(text: str) -> str:
    return text.replace("\r\n", "\n")


def test_message_is_multipart_alternative_text_then_html():
    _, msg = one_message(realistic_issue())
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.defects == [] and all(p.defects == [] for p in parts)


def test_decoded_bodies_equal_an_email_package_render_of_the_same_content():
    rendered = realistic_issue()
    url = "https://jeudis.example.org/unsubscribe/42.abc"
    _, ours = one_message(rendered)
    reference = EmailMessage()
    reference.set_content(rendered.text.replace(UNSUBSCRIBE_MARK, url), cte="quoted-printable")
    reference.add_alternative(
        rendered.html.replace(UNSUBSCRIBE_MARK, url), subtype="html", cte="quoted-printable"
    )
    theirs = email.message_from_bytes(reference.as_bytes(), policy=email.policy.default)
    for mine, expected in zip(ours.iter_parts(), theirs.iter_parts(), strict=True):
        assert normalised(mine.get_content()) == normalised(expected.get_content())


def test_unsubscribe_url_in_both_bodies_and_the_headers():
    data, msg = one_message(realistic_issue(), token="42.a&b")
    url = "https://jeudis.example.org/unsubscribe/42.a&b"
    text, page = (p.get_content() for p in msg.iter_parts())
    assert url in text.splitlines()
    assert UNSUBSCRIBE_MARK not in text and UNSUBSCRIBE_MARK not in page
    links = [
        a for a in lxml.html.fromstring(page).iter("a") if a.text_content() == "Se désinscrire"
    ]
    assert [a.get("href") for a in links] == [url]  # escaped as &amp; in the source, whole here
    assert "42.a&amp;b" in page
    assert msg["List-Unsubscribe"] == (
        f"<{url}>, <mailto:desinscription@lerameau.example.org?subject=unsubscribe-42.a&b>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_headers_are_encoded_and_round_trip():
    data, msg = one_message(realistic_issue())
    assert msg["Subject"] == SUBJECT
    assert str(msg["To"]) == "Zoé Lefèvre-Dupont <zoe@example.org>"
    assert msg["To"].addresses[0].display_name == "Zoé Lefèvre-Dupont"
    assert msg["From"].addresses[0].addr_spec == "jeudis@lerameau.example.org"
    assert msg["Reply-To"].addresses[0].addr_spec == "contact@lerameau.example.org"
    assert parsedate_to_datetime(msg["Date"]) == DATE
    assert msg["MIME-Version"] == "1.0"
    assert msg["List-Id"] == "Les Jeudis de l’ODD 17 <jeudis-odd17.lerameau.example.org>"
    assert msg["Feedback-ID"] == "2026-W48:jeudis-odd17:jeudis:lerameau.example.org"
    assert msg["Message-ID"] == message_id_for(WEEK, 42, "lerameau.example.org")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # RFC 2047 did its job: no raw UTF-8 in the header section
    assert b"Precedence" not in head


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Jean Dupont",
        "Dupont, Jean (RAMEAU)",
        'Élise "Lili" Gaël',
        "Amélie-Françoise de La Tour d'Auvergne-Lauraguais, présidente de l'association",
        "Ligne\r\nBcc: evil@example.org",
        "Ébène " * 30,
    ],
)
def test_to_header_round_trips_any_name(name):
    data, msg = one_message(realistic_issue(1), name=name)
    (address,) = msg["To"].addresses
    assert address.addr_spec == "zoe@example.org"
    expected = " ".join(name.split())
    # CPython's address parser adds a space between adjacent encoded-words (RFC 2047 6.2 says
    # to drop it); the RFC-correct legacy decoder must give the name exactly.
    assert " ".join(address.display_name.split()) == expected
    assert msg["Bcc"] is None
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    to_field = head[head.index("\r\nTo: ") + 6 :].split("\r\nMessage-ID:")[0]
    decoded = str(make_header(decode_header(to_field.replace("\r\n", ""))))
    wanted = f"{expected} <zoe@example.org>" if expected else "zoe@example.org"
    assert decoded.replace('"', "") == wanted.replace('"', "")
    assert all(len(line) <= 78 for line in to_field.split("\r\n"))


def test_crlf_only_and_lines_within_998_octets():
    huge_line = "é" * 5000 + f' <a href="{UNSUBSCRIBE_MARK}">Se désinscrire</a> ' + "à" * 5000
    rendered = realistic_issue()
    rendered = RenderedIssue(
        rendered.subject, rendered.preheader, huge_line, rendered.text + "\r\nfin\r", ""
    )
    data, msg = one_message(rendered)
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    page = msg.get_body(("html",)).get_content()
    assert "https://jeudis.example.org/unsubscribe/42.abc" in page


def test_boundary_does_not_occur_in_the_parts():
    rendered = realistic_issue()
    template = compose(rendered, settings=settings(), issue_week=WEEK)
    data, _ = one_message(rendered)
    boundary = template.boundary.encode()
    # Exactly the two delimiters and the close delimiter: nowhere inside a part.
    assert data.count(boundary) == 4  # header parameter + 2 delimiters + close
    # Same content, same boundary: a rebuild gives byte-identical messages.
    assert compose(rendered, settings=settings(), issue_week=WEEK) == template


def test_personalize_changes_only_the_personal_fields():
    rendered = realistic_issue()
    cfg = settings()
    template = compose(rendered, settings=cfg, issue_week=WEEK)

    def message(n: int) -> bytes:
        return personalize(
            template,
            recipient_email=f"lecteur{n}@example.org",
            recipient_name=f"Lecteur {n}",
            message_id=message_id_for(WEEK, n, "lerameau.example.org"),
            unsubscribe_url=unsubscribe_url(cfg, f"{n}.tok{n}"),
            unsubscribe_mailto=unsubscribe_mailto(cfg, f"{n}.tok{n}"),
            date=DATE,
        )

    first, second = message(1), message(2)
    assert first != second
    assert b"tok2" not in first and b"lecteur2" not in first
    assert len(first) == len(second)  # same lengths of personal values: only those differ


def test_a_body_without_the_unsubscribe_mark_is_refused():
    rendered = realistic_issue()
    for broken in (
        RenderedIssue(SUBJECT, "", rendered.html.replace(UNSUBSCRIBE_MARK, "#"), rendered.text, ""),
        RenderedIssue(SUBJECT, "", rendered.html, rendered.text.replace(UNSUBSCRIBE_MARK, ""), ""),
    ):
        with pytest.raises(ContentError, match="unsubscribe"):
            compose(broken, settings=settings(), issue_week=WEEK)


def test_message_ids_are_deterministic_and_distinct():
    first = message_id_for(WEEK, 42, "lerameau.example.org", secret=b"s")
    assert first == message_id_for(WEEK, 42, "lerameau.example.org", secret=b"s")
    others = {
        message_id_for(WEEK, 43, "lerameau.example.org", secret=b"s"),
        message_id_for("2026-W49", 42, "lerameau.example.org", secret=b"s"),
        message_id_for(WEEK, 42, "lerameau.example.org", secret=b"other instance"),
    }
    assert first not in others and len(others) == 3
    assert first.startswith("<2026-W48.42.") and first.endswith("@lerameau.example.org>")
    assert parseaddr(first)[1]  # a valid msg-id shape


def test_compose_simple_builds_a_text_and_html_message():
    data = compose_simple(
        settings=settings(),
        to_email="zoe@example.org",
        to_name="Zoé",
        subject="Test d'envoi : Les Jeudis de l'ODD 17",
        text="Ceci est un envoi de test.\n",
        html_body="<p>Ceci est un envoi de <b>test</b>.</p>\n",
        date=DATE,
        message_id="<test.1@lerameau.example.org>",
    )
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert msg["To"].addresses[0].display_name == "Zoé"
    assert normalised(msg.get_body(("plain",)).get_content()) == "Ceci est un envoi de test.\n"
    assert "<b>test</b>" in msg.get_body(("html",)).get_content()


def test_the_stored_template_gives_back_the_same_message():
    rendered = realistic_issue()
    template = compose(rendered, settings=settings(), issue_week=WEEK)
    stored = dump_template(template)
    assert load_template(stored) == template
    for broken in (b"", b"pickle", stored[:-7] + b"B\xff\xff"):
        with pytest.raises(ValueError, match="issue_message.template"):
            load_template(broken)


def test_date_is_stamped_per_message_not_per_issue():
    template = compose(realistic_issue(), settings=settings(), issue_week=WEEK)
    later = datetime(2026, 11, 26, 10, 3, 9, tzinfo=UTC)
    cfg = settings()
    data = personalize(
        template,
        recipient_email="zoe@example.org",
        recipient_name="",
        message_id="<x@y>",
        unsubscribe_url=unsubscribe_url(cfg, "1.a"),
        unsubscribe_mailto=unsubscribe_mailto(cfg, "1.a"),
        date=later,
    )
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert parsedate_to_datetime(msg["Date"]) == later
    assert data.count(b"\r\nDate: ") == 1
