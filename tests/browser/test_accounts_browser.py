"""Accounts and readers' data in a real browser: logging in by name, what an editor does not
see, a logout that holds against a replayed cookie, an admin erasing a reader."""

from __future__ import annotations

import re

import pytest
from jeudis_cli import run
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

BOB = ("bob", "bob a un bon mot de passe")


def log_in(page, site, name: str, password: str) -> None:
    page.goto(f"{site.url}/desk/queue")
    expect(page).to_have_url(re.compile(r"/desk/login\?next=%2Fqueue$"))
    page.get_by_label("Nom").fill(name)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def test_an_editor_logs_in_by_name_and_a_logout_holds_against_replay(page, site):
    added = run(site.home, "editor", "add", BOB[0], "--password-stdin", input=BOB[1])
    assert added.exit_code == 0, added.output
    log_in(page, site, "bob", "pas le bon mot de passe")
    expect(page.get_by_role("alert")).to_have_text("Nom ou mot de passe incorrect.")
    page.get_by_label("Mot de passe").fill(BOB[1])
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(re.compile(r"/desk/queue$"))
    expect(page.get_by_text("bob (éditeur)")).to_be_visible()
    nav = page.get_by_role("navigation", name="Bureau éditorial")
    expect(nav.get_by_role("link", name="Journal")).to_be_visible()
    expect(nav.get_by_role("link", name="Lecteurs")).to_have_count(0)
    # An admin's page says no, in French.
    answer = page.goto(f"{site.url}/desk/readers")
    assert answer is not None and answer.status == 403
    expect(page.locator("main")).to_contain_text("Réservé aux administrateurs")
    page.goto(f"{site.url}/desk/preview")
    expect(page.get_by_text("Les envois de test sont réservés aux administrateurs")).to_be_visible()
    expect(page.get_by_role("button", name="Envoyer un test")).to_have_count(0)

    cookies = page.context.cookies()
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/desk/login$"))
    page.context.add_cookies(cookies)  # the cookie from before the logout, replayed
    page.goto(f"{site.url}/desk/queue")
    expect(page).to_have_url(re.compile(r"/desk/login\?next="))


def test_an_admin_sees_a_readers_consent_and_erases_their_data(page, site, artifacts):
    # No account yet: on loopback the desk is open, as its local admin.
    page.goto(f"{site.url}/desk/readers")
    page.get_by_label("Adresse du lecteur").fill("Camille.Martin@example.org")
    page.get_by_role("button", name="Chercher").click()
    expect(page.locator("#reader-status")).to_have_text("inscrit")
    expect(page.locator("#reader-consent")).to_contain_text("ajout par un éditeur")
    download = page.get_by_role("link", name="Télécharger toutes ses données (JSON)")
    expect(download).to_have_attribute("href", re.compile(r"email=camille\.martin%40example\.org"))
    page.screenshot(path=str(artifacts / "desk-readers.png"), full_page=True)

    page.get_by_role("button", name="Effacer ses données").click()  # not confirmed yet
    expect(page.locator("#f-confirm")).to_be_visible()
    page.get_by_label("Pour effacer ses données, recopiez l’adresse").fill(
        "camille.martin@example.org"
    )
    page.get_by_role("button", name="Effacer ses données").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Données de camille.martin@example.org effacées"
    )
    page.get_by_label("Adresse du lecteur").fill("camille.martin@example.org")
    page.get_by_role("button", name="Chercher").click()
    expect(page.locator("#reader-forgotten")).to_contain_text("a été effacée le")

    page.goto(f"{site.url}/desk/journal")
    first = page.locator("tr.log-entry").first
    expect(first.locator(".log-actor")).to_have_text("local")
    expect(first.locator(".log-action")).to_have_text("effacement d’un lecteur")
    expect(page.locator("main")).not_to_contain_text("camille")
