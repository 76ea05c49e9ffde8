"""`jeudis publish`: write the public archive site (issue pages, index, Atom feed)."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.archive import publish_site
from newsletter.cli import App, pass_app
from newsletter.db import open_session
from newsletter.errors import InputError


@click.command("publish")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the site to (default: $JEUDIS_HOME/site, what `jeudis serve` serves).",
)
@pass_app
def publish(app: App, out: Path | None) -> None:
    """Write the public site from the database: one page per public issue, the index, the
    Atom feed.

    An issue is public from its scheduled send time. Static files any web server can serve;
    links use base_url. Any machine of the instance can run it; running it twice gives the
    same files.
    """
    settings = app.settings
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is not a folder")
    with open_session(settings) as session:
        report = publish_site(session, settings, app.clock(), out)
    click.echo(f"published {len(report.pages)} issue page(s) to {report.root}")
    click.echo(f"index: {report.index}")
    click.echo(f"feed:  {report.feed}")
