"""The desk shows each issue's delivery figures, as `jeudis stats` does (real HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import lxml.html
from jeudis_cli import MONDAY
from returns_helpers import add_readers, inbound, issues_sent, render
from starlette.applications import Starlette
from starlette.routing import Mount
from typography_checks import html_faults

from newsletter.web.desk import desk_app


def _desk(live_app, settings) -> httpx.Client:
    site = Starlette(routes=[Mount("/desk", app=desk_app(settings, lambda: MONDAY))])
    return httpx.Client(base_url=live_app(site) + "/desk", timeout=60)


def test_the_issue_page_shows_the_figures_and_warns_in_french(home, clock, live_app):
    ids = add_readers(home.settings, clock)
    issues_sent(home, ["2026-w47", "2026-w48"], ids)
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    for name in ("postfix_hard_dsn.eml", "yahoo_arf_complaint.eml"):
        inbound(home.path, stdin=render(name, home.settings, ids), now=friday)
    http = _desk(live_app, home.settings)

    listing = lxml.html.fromstring(http.get("/issues").text)
    assert [row.get("id") for row in listing.xpath("//tbody/tr")] == [
        "stats-2026-W48",
        "stats-2026-W47",
    ]
    page = http.get("/issues/2026-W48")
    assert page.status_code == 200
    doc = lxml.html.fromstring(page.text)
    cells = {td.get("data-field"): td.text_content() for td in doc.xpath("//tbody/tr/td")}
    assert cells == {
        "recipients": "5",
        "sent": "5",
        "hard_bounces": "1",
        "soft_bounces": "0",
        "complaints": "1",
        "unsubscribes": "1",
        "bounce_rate": "20,00\u202f%",
        "complaint_rate": "20,00\u202f%",
    }
    alerts = [p.text_content() for p in doc.xpath('//*[@role="alert"]')]
    assert len(alerts) == 2
    assert "Taux de plaintes de 20,00\u202f%, au-dessus de 0,1\u202f%" in alerts[0]
    content = lxml.html.tostring(doc.get_element_by_id("contenu"), encoding="unicode")
    assert html_faults(content) == []  # French typography, as a reader sees it
    quiet = lxml.html.fromstring(http.get("/issues/2026-W47").text)
    assert not quiet.xpath('//*[@role="alert"]')
    assert http.get("/issues/2026-W12").status_code == 404
    assert http.get("/issues/nonsense").status_code == 404
