"""The public side in a real browser: the archive index, an issue page, unsubscribing."""

from __future__ import annotations

import email
import email.policy
import re

import feedparser
import pytest
from playwright.sync_api import expect
from sqlmodel import select

from newsletter.db import open_session
from newsletter.models import Subscriber

pytestmark = pytest.mark.browser


def test_following_the_archive_from_the_index_to_an_issue(page, site, artifacts):
    page.goto(f"{site.url}/archive/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    feed_link = page.locator('link[rel="alternate"][type="application/atom+xml"]')
    expect(feed_link).to_have_attribute("href", f"{site.url}/archive/feed.atom")
    issues = page.locator("ol.issues > li")
    expect(issues).to_have_count(2)
    expect(issues.first).to_contain_text("n° 2 · jeudi 3 décembre 2026")
    page.screenshot(path=str(artifacts / "archive-index.png"), full_page=True)
    issues.nth(1).get_by_role("link").click()
    expect(page).to_have_url(f"{site.url}/archive/2026-W48/")
    expect(page.get_by_text("n° 1 · jeudi 26 novembre 2026")).to_be_visible()
    expect(page.get_by_role("heading", level=2)).to_have_count(4)  # Au sommaire + 3 sections
    html = page.content()
    assert "/unsubscribe/" not in html and "Se désinscrire" not in page.inner_text("body")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # And back to all issues, from the issue page's own link.
    page.get_by_role("link", name="Tous les numéros").first.click()
    expect(page).to_have_url(f"{site.url}/archive/")

    response = page.request.get(f"{site.url}/archive/feed.atom")
    assert response.ok and response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.body())
    assert not feed.bozo and len(feed.entries) == 2
    assert [e.link for e in feed.entries] == [
        f"{site.url}/archive/2026-W49/",
        f"{site.url}/archive/2026-W48/",
    ]


def test_voir_en_ligne_in_the_email_leads_to_the_issue_page(page, site):
    message_file = next((site.home / "outbox" / "2026-W48").glob("*.eml"))
    message = email.message_from_bytes(message_file.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    online = re.search(r'href="([^"]+)"[^>]*>Voir en ligne', html)[1]
    assert online == f"{site.url}/archive/2026-W48/"
    page.goto(online)
    expect(page.get_by_text("n° 1 · jeudi 26 novembre 2026")).to_be_visible()


def test_unsubscribing_through_the_page(page, site):
    message_file = sorted((site.home / "outbox" / "2026-W48").glob("*.eml"))[0]
    message = email.message_from_bytes(message_file.read_bytes(), policy=email.policy.default)
    link = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>", message["List-Unsubscribe"])[1]
    reader = message["To"].addresses[0].addr_spec.lower()
    page.goto(link)
    expect(page.get_by_text(reader)).to_be_visible()
    page.get_by_role("button", name="Me désinscrire").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Désinscription enregistrée")
    with open_session(site.settings) as session:
        status = session.exec(select(Subscriber.status).where(Subscriber.email == reader)).one()
    assert status == "unsubscribed"
