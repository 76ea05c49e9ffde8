"""The desk in a real browser: preview and widths, live reload, the item form, the review."""

from __future__ import annotations

import re

import pytest
from jeudis_cli import MONDAY
from playwright.sync_api import expect
from sqlmodel import select

from newsletter.db import open_session
from newsletter.models import ContentItem
from newsletter.queue import ItemFields, add_item

pytestmark = pytest.mark.browser

SCREENSHOTS = {"375": "preview-375.png", "600": "preview-600.png"}


def frame_of(page):
    return page.frame_locator("#email-frame")


def email_document(page):
    """The iframe's document (same origin): the email as the desk shows it."""
    return page.locator("#email-frame").element_handle().content_frame()


@pytest.mark.parametrize("width", ["375", "600"])
def test_preview_at_phone_and_desktop_width_has_no_horizontal_scroll(page, site, artifacts, width):
    page.goto(f"{site.url}/desk/preview?date=2026-12-10")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    frame = page.locator("#email-frame")
    page.get_by_role("button", name=re.compile(rf"\({width} px\)")).click()
    expect(page.get_by_role("button", name=re.compile(rf"\({width} px\)"))).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(frame).to_have_attribute("data-width", width)
    box = frame.bounding_box()
    assert box is not None and round(box["width"]) == int(width)
    email = email_document(page)
    email.wait_for_load_state()
    expect(frame_of(page).get_by_role("heading", level=2).first).to_be_visible()
    sizes = email.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth,"
        " document.documentElement.scrollHeight]"
    )
    assert sizes[0] <= sizes[1] == int(width), sizes
    # The frame grows to the email's height: one scroll bar, the page's.
    page.wait_for_function(
        "() => Math.abs(document.getElementById('email-frame').getBoundingClientRect().height"
        " - document.getElementById('email-frame').contentDocument.documentElement.scrollHeight)"
        " < 2"
    )
    shot = artifacts / SCREENSHOTS[width]
    frame.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    # The text part sits beside it, exactly the email's text part.
    text = page.request.get(f"{site.url}/desk/preview/email.txt?date=2026-12-10").text()
    assert page.locator("#text-part").text_content() == text
    # Au sommaire and three sections, and the desk page itself does not scroll sideways.
    assert email.locator("h2").count() == 4
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_desk_pages_fit_a_phone(page, site, artifacts):
    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("/desk/", "/desk/queue", "/desk/items/new", "/desk/preview"):
        page.goto(site.url + path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path


def test_preview_reloads_itself_when_the_queue_or_a_template_changes(page, site):
    page.goto(f"{site.url}/desk/preview?date=2026-12-10")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.get_by_role("button", name="Téléphone (375 px)").click()
    # A change through the command line, in another process's words: the database.
    site.cli(
        "item",
        "add",
        "--kind",
        "tool",
        "--title",
        "Un outil tout neuf pour la semaine",
        "--url",
        "https://www.lerameau.fr/outil-neuf/",
        "--week",
        "2026-W50",
        "--priority",
        "9",
    )
    expect(page.locator("#text-part")).to_contain_text("Un outil tout neuf pour la semaine")
    expect(
        frame_of(page).get_by_role("link", name="Un outil tout neuf pour la semaine")
    ).to_be_visible()
    # The width chosen by the editor survives the refresh.
    expect(page.locator("#email-frame")).to_have_attribute("data-width", "375")
    # Then a template edit: no restart, no click.
    template = site.templates / "email.mjml.j2"
    template.write_text(
        template.read_text().replace("Le flash-info du RAMEAU", "Le flash-info revu")
    )
    expect(frame_of(page).get_by_text("Le flash-info revu").first).to_be_visible()
    expect(page.locator("#live-status")).to_contain_text("Aperçu mis à jour")


def test_choosing_another_thursday_from_the_list(page, site):
    page.goto(f"{site.url}/desk/preview")
    page.get_by_label("Jeudi", exact=True).select_option("2026-12-17")
    page.get_by_role("button", name="Afficher").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Aperçu du numéro du jeudi 17 décembre 2026"
    )
    expect(frame_of(page).get_by_text("jeudi 17 décembre 2026")).to_be_visible()


def test_adding_an_item_through_the_form_shows_it_in_the_calendar(page, site, artifacts):
    page.goto(f"{site.url}/desk/")
    page.get_by_role("link", name="Ajouter", exact=True).click()
    page.get_by_label("Rubrique").select_option("example")
    page.get_by_label("Titre").fill("Une alliance exemplaire en Bretagne")
    page.get_by_label("Adresse du lien").fill("https://www.lerameau.fr/bretagne/")
    page.get_by_label("Résumé").fill("Associations, entreprises et commune réunies.")
    page.get_by_label("Texte (Markdown)").fill("Un **exemple** à suivre.")
    page.get_by_label("Épingler sur la semaine").fill("2026-W51")
    page.get_by_role("button", name="Ajouter à la file").click()
    expect(page).to_have_url(re.compile(r"/desk/\?added=\d+"))
    expect(page.get_by_role("status")).to_contain_text("est dans la file")
    cell = page.locator("#week-2026-W51 td[data-kind=example]")
    expect(cell).to_have_text("Une alliance exemplaire en Bretagne")
    page.screenshot(path=str(artifacts / "desk-calendar.png"), full_page=True)


def test_a_bad_url_is_refused_beside_the_field(page, site, artifacts):
    page.goto(f"{site.url}/desk/items/new")
    page.get_by_label("Titre").fill("Un lien mal recopié")
    page.get_by_label("Adresse du lien").fill("www.lerameau.fr/sans-protocole")
    page.get_by_role("button", name="Ajouter à la file").click()
    url = page.get_by_label("Adresse du lien")
    expect(url).to_have_attribute("aria-invalid", "true")
    error = page.locator("#err-url")
    expect(error).to_have_text(re.compile("commence par https://"))
    assert "err-url" in (url.get_attribute("aria-describedby") or "").split()
    expect(page.get_by_role("alert")).to_contain_text("1 erreur")
    expect(page.get_by_label("Titre")).to_have_value("Un lien mal recopié")
    page.screenshot(path=str(artifacts / "desk-item-error.png"), full_page=True)
    with open_session(site.settings) as session:
        titles = session.exec(select(ContentItem.title)).all()
    assert "Un lien mal recopié" not in titles


def test_approving_a_proposed_news_item(page, site, artifacts):
    with open_session(site.settings) as session:
        fields = ItemFields(
            kind="news",
            title="Une actualité venue d'un flux",
            url="https://example.org/flux/1",
            summary="Proposée par un flux suivi.",
        )
        item_id = add_item(session, fields, lambda: MONDAY, source="feed", status="proposed").id
    page.goto(f"{site.url}/desk/queue")
    card = page.locator(f"#proposed-{item_id}")
    expect(card).to_contain_text("Une actualité venue d'un flux")
    page.screenshot(path=str(artifacts / "desk-queue.png"), full_page=True)
    card.get_by_role("button", name=re.compile("^Approuver")).click()
    expect(page.get_by_role("status")).to_contain_text("approuvée")
    expect(page.locator(f"#proposed-{item_id}")).to_have_count(0)
    with open_session(site.settings) as session:
        assert session.get(ContentItem, item_id).status == "queued"
