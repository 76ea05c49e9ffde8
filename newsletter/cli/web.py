"""CLI commands: `jeudis serve`."""

from __future__ import annotations

import click

from newsletter.cli import App, pass_app


@click.command("serve")
@click.option("--host", help="Address to listen on (default: web_host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: web_port, 8017).")
@pass_app
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the subscription pages, the desk and the archive (uvicorn).

    Listens on 127.0.0.1 unless told otherwise: put a TLS reverse proxy in front of it for
    the public base_url.
    """
    import uvicorn

    from newsletter.web import create_app

    settings = app.settings
    uvicorn.run(
        create_app(settings, app.clock),
        host=host or settings.web_host,
        port=port or settings.web_port,
        proxy_headers=True,
        log_level="info",
    )


COMMANDS = [serve]
