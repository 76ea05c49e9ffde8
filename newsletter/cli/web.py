"""CLI commands: `jeudis serve`."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import click

from newsletter.cli import App, pass_app
from newsletter.web.auth import check_desk_settings


@click.command("serve")
@click.option("--host", help="Address to listen on (default: web_host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: web_port, 8017).")
@click.option(
    "--content",
    "content_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Content folder the desk re-imports when its files change (default: ./content "
    "if this instance was filled from it).",
)
@pass_app
def serve(app: App, host: str | None, port: int | None, content_dir: Path | None) -> None:
    """Serve the subscription pages, the desk and the archive (uvicorn).

    Listens on 127.0.0.1 unless told otherwise: put a TLS reverse proxy in front of it for
    the public base_url (and list it in trusted_proxies). Answers only base_url's host and
    loopback names; body, header and connection limits come from the web_* settings.
    """
    import uvicorn

    from newsletter.web import create_app
    from newsletter.web.server import server_config

    settings = replace(
        app.settings,
        web_host=host or app.settings.web_host,
        content_dir=str(content_dir) if content_dir else app.settings.content_dir,
    )
    check_desk_settings(settings)  # beyond loopback the desk needs a password: say so now
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    config = server_config(
        create_app(settings, app.clock), settings, settings.web_host, port or settings.web_port
    )
    uvicorn.Server(config).run()
