"""`jeudis demo`: a fresh instance with the sample content, a few readers and this week's issue."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter import subscribers
from newsletter.build import build_issue, render_recorded
from newsletter.cli import App, pass_app
from newsletter.cli.pipeline import echo_build, today
from newsletter.config import SAMPLE_CONTENT_DIR
from newsletter.content import import_content
from newsletter.db import open_session
from newsletter.delivery import export_outbox
from newsletter.files import write_atomic
from newsletter.render import as_preview
from newsletter.weeks import upcoming_thursday

SAMPLE_READERS = SAMPLE_CONTENT_DIR / "subscribers-demo.csv"


@click.command("demo")
@click.option(
    "--content",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=SAMPLE_CONTENT_DIR,
    help="The content folder (default: the sample content shipped with jeudis).",
)
@pass_app
def demo(app: App, content: Path) -> None:
    """Import the sample content and readers, then build this week's issue (idempotent)."""
    settings = app.settings
    with open_session(settings) as session:
        imported = import_content(session, content, app.clock)
        readers = subscribers.import_csv(session, app.clock, SAMPLE_READERS)
        click.echo(
            f"content: {len(imported.added)} added, {len(imported.updated)} updated, "
            f"{len(imported.unchanged) + len(imported.kept)} already there"
        )
        click.echo(
            f"readers: {readers.added} added, {readers.unchanged + readers.updated} already there"
        )
        report = build_issue(session, settings, upcoming_thursday(today(app)), app.clock)
        week = report.issue.week_key
        exported = export_outbox(session, settings, app.clock, settings.outbox_dir / week, week)
    echo_build(report)
    first = min(exported.directory.glob("*.eml"), default=None)
    email_html = settings.home / "preview" / f"{report.issue.week_key}-email.html"
    with open_session(settings) as session:
        rendered = render_recorded(session, settings, report.issue)
    write_atomic(email_html, as_preview(rendered, settings).html)
    click.echo(f"email:    {email_html.resolve()}")
    if first:
        click.echo(f"message:  {first.resolve()}")
