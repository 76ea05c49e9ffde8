"""A real headless Chromium (Debian's package, driven by Playwright) against the real site.

The site is `create_app` under uvicorn on 127.0.0.1, on a fresh JEUDIS_HOME filled by the
real services: the sample content, two readers, the issues of 2026-W48 and 2026-W49 built
with a fixed clock (Monday 23 November 2026), the archive published.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jeudis_cli import REPO, run
from smtp_server import free_port

from newsletter.config import Settings, load_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BUILT_W49 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 2026-W48 built on Monday 11-23
# The site's clock: Thursday 2026-12-03 13:00 Paris, both issues public (W49 since 08:00).
SERVED_AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
READERS = [("camille.martin@example.org", "Camille Martin"), ("noe.leroy@example.org", "Noé Leroy")]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium package "
            "(apt-get install chromium; .ci/run installs it). Playwright cannot download "
            "browsers here.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site):
    # Depends on `site` so that the page (and its live-reload stream) closes before the
    # server stops.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class Site:
    url: str
    home: Path
    templates: Path
    settings: Settings

    def cli(self, *args: str):
        result = run(self.home, *args)
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    import uvicorn

    from newsletter.web import create_app

    home, templates = tmp_path / "home", tmp_path / "templates"
    home.mkdir()
    shutil.copytree(REPO / "templates", templates)  # the live-reload test edits a template
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (home / "jeudis.toml").write_text(f'base_url = "{url}"\ntemplates_dir = "{templates}"\n')
    site = Site(url, home, templates, load_settings({"JEUDIS_HOME": str(home)}))
    site.cli("import", str(REPO / "content"))
    for address, name in READERS:
        site.cli("subscriber", "add", address, "--name", name)
    site.cli("build", "--date", "2026-11-26")
    assert run(home, "build", now=BUILT_W49).exit_code == 0  # the Friday after n°1 went out
    site.cli("outbox", "export", str(home / "outbox" / "2026-W48"), "--week", "2026-W48")

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(site.settings, lambda: SERVED_AT),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    yield site
    server.should_exit = True
    thread.join(timeout=20)
