"""The attacks of issue 10 played by a real Chromium against the real site on 127.0.0.1.

- DNS rebinding: the attacker's host name resolves to 127.0.0.1 (Chromium's resolver rules
  stand in for the attacker's DNS server); its page and the desk then share an origin as
  far as the browser knows, so only the server's Host check stands in the way.
- Another local origin (a page on another port of 127.0.0.1: same *site*, so the strict
  session cookie goes along) posts a desk form with a token it got hold of.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS
from smtp_server import free_port
from sqlmodel import select

from newsletter.db import open_session
from newsletter.models import ContentItem

pytestmark = pytest.mark.browser

EVIL = "rebind.evil.example"


@pytest.fixture
def rebinding_browser(browser):
    """A second Chromium whose resolver sends EVIL to 127.0.0.1."""
    rules = f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"
    other = browser.browser_type.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules])
    yield other
    other.close()


def test_a_rebound_host_name_gets_no_desk(rebinding_browser, site):
    port = site.url.rsplit(":", 1)[1]
    context = rebinding_browser.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        response = page.goto(f"http://{EVIL}:{port}/desk/")
        assert response is not None and response.status == 400
        assert page.locator("h1").inner_text() == "Requête refusée"
        assert page.locator("html").get_attribute("lang") == "fr"
        for path in ("/desk/queue", "/desk/items/new", "/subscribe"):
            response = page.goto(f"http://{EVIL}:{port}{path}")
            assert response is not None and response.status == 400
    finally:
        context.close()


@pytest.fixture
def attacker_site(tmp_path):
    """A plain static server on another port of 127.0.0.1 serving tmp_path/attack/."""
    root = tmp_path / "attack"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=10)


def test_a_form_from_another_local_origin_is_refused(page, site, attacker_site):
    root, attacker = attacker_site
    page.goto(f"{site.url}/desk/items/new")  # the editor's session and its token
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    (root / "index.html").write_text(
        f"""<!doctype html><html><body>
        <form id="f" method="post" action="{site.url}/desk/items/new">
          <input name="csrf_token" value="{token}">
          <input name="kind" value="tool"><input name="title" value="Un outil piégé">
          <input name="url" value="https://evil.example/outil/">
        </form><script>document.getElementById('f').submit()</script></body></html>""",
        encoding="utf-8",
    )
    with page.expect_navigation(url=re.compile(re.escape(site.url) + "/desk/")) as navigation:
        page.goto(f"{attacker}/index.html")
    response = navigation.value
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "Requête refusée"
    with open_session(site.settings) as session:
        titles = list(session.exec(select(ContentItem.title)))
    assert "Un outil piégé" not in titles
