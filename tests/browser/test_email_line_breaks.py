"""At phone widths no line of the email starts with « : ; ! ? » % » or ends with « « ».

Measured in a real Chromium with Range.getClientRects (bench/line_breaks.js), on the sample
issue of bench/screenshot_email.py: real sentences of content/, rendered by render().
"""

from __future__ import annotations

import html
import sys

import pytest
from jeudis_cli import REPO

from newsletter.typography import typeset

sys.path.insert(0, str(REPO / "bench"))
from screenshot_email import LINE_BREAKS_JS, sample_issue  # noqa: E402

# Every space is a break opportunity at this width: the typeset text must still hold together.
RAW = "le rôle de « catalyseur » : plus de 1 000 exemples, 74 % ; en actions ! l'ODD 17, n°1 ?"


def lines_broken_badly(browser, body: str, width: int) -> list[str]:
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        page.route("**/*", lambda route: route.abort())  # no network: images stay blank
        page.set_content(body, wait_until="load")
        return page.evaluate(LINE_BREAKS_JS)
    finally:
        page.close()


def test_the_checker_sees_bad_breaks_and_typography_prevents_them(browser):
    narrow = '<p style="width:1px;font:16px sans-serif">{}</p>'
    raw = lines_broken_badly(browser, narrow.format(html.escape(RAW)), 320)
    assert len(raw) >= 7, raw  # « :  » 000 % ; ! ?, each on a line of its own
    assert lines_broken_badly(browser, narrow.format(html.escape(typeset(RAW))), 320) == []


@pytest.mark.parametrize("width", [320, 375])
def test_sample_issue_breaks_no_line_badly_on_a_phone(browser, width):
    assert lines_broken_badly(browser, sample_issue().html, width) == []
