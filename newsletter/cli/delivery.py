"""CLI commands: `jeudis send`."""

from __future__ import annotations

import sys
from contextlib import nullcontext

import click

from newsletter.cli import App, pass_app
from newsletter.cli.editors import note
from newsletter.db import open_session
from newsletter.send import RelayError, count_queued, send_outbox


@click.command("send")
@click.option("--limit", type=click.IntRange(min=1), help="Send at most N messages this run.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    metavar="PER_SECOND",
    help="At most this many messages per second (default: send_rate; 0: no limit).",
)
@click.option("--dry-run", is_flag=True, help="Connect to nothing; list what would be sent.")
@pass_app
def send(app: App, limit: int | None, rate: float | None, dry_run: bool) -> None:
    """Deliver the queued outbox messages to the SMTP relay (settings: smtp_url).

    Resumable: run it again after an interruption and it carries on where it stopped.
    Temporary failures stay queued for the next run; 5xx answers mark the reader bounced.
    If the process is killed while a message is in flight, that one message is sent
    again by the next run (at-least-once): a reader may get it twice, nobody loses it.
    """
    settings = app.settings
    with open_session(settings) as session:
        if dry_run:
            report = send_outbox(session, settings, app.clock, limit, rate, dry_run=True)
            for delivery in report.planned:
                click.echo(f"{delivery.recipient}\t{delivery.purpose}\t{delivery.path}")
            click.echo(f"would send: {len(report.planned)}, queued: {report.remaining}")
            return
        total = min(count_queued(session), limit or sys.maxsize)
        try:
            with _progress_bar(total) as advance:
                report = send_outbox(session, settings, app.clock, limit, rate, progress=advance)
        except RelayError as exc:
            click.echo(exc.report.summary())
            raise
        note(app, session, "outbox.send", "outbox", report.summary())
    click.echo(report.summary())


def _progress_bar(total: int):
    """A Rich bar on a terminal; nothing otherwise (logs and pipes stay clean)."""
    if not sys.stderr.isatty() or total == 0:
        return nullcontext(None)
    from contextlib import contextmanager

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    @contextmanager
    def bar():
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("sending", total=total)
            yield lambda _delivery, _outcome: progress.advance(task)

    return bar()
