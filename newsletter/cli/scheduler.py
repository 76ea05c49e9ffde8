"""`jeudis scheduler`: the long-running Thursday job."""

from __future__ import annotations

import click

from newsletter.cli import App, pass_app
from newsletter.scheduler import run_scheduler


@click.command("scheduler")
@pass_app
def scheduler(app: App) -> None:
    """Run the Thursday build, the daily feed fetch (and sending, if send_after_build) until
    stopped. Any number may run on one PostgreSQL database: each job runs once."""
    run_scheduler(app.settings, app.clock)
