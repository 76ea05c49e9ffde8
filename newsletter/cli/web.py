"""CLI commands: `jeudis serve`."""

from __future__ import annotations

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
    the public base_url.
    """
    import uvicorn

    from newsletter.web import create_app

    settings = replace(
        app.settings,
        web_host=host or app.settings.web_host,
        content_dir=str(content_dir) if content_dir else app.settings.content_dir,
    )
    check_desk_settings(settings)  # beyond loopback the desk needs a password: say so now
    uvicorn.run(
        create_app(settings, app.clock),
        host=settings.web_host,
        port=port or settings.web_port,
        proxy_headers=True,
        log_level="info",
        timeout_graceful_shutdown=3,
    )
