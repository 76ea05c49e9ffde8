"""CLI commands: `jeudis send` and `jeudis outbox export`."""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from newsletter.cli import App, pass_app
from newsletter.cli.editors import note
from newsletter.db import open_session
from newsletter.delivery import RelayError, export_outbox, send_outbox
from newsletter.delivery.claims import count_waiting


@click.command("send")
@click.option("--limit", type=click.IntRange(min=1), help="Send at most N messages this run.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    metavar="PER_SECOND",
    help="At most this many messages per second, all connections together "
    "(default: send_rate; 0: no limit).",
)
@click.option(
    "--connections",
    type=click.IntRange(min=1, max=64),
    help="Parallel SMTP connections (default: send_connections).",
)
@click.option("--now", "send_now", is_flag=True, help="Send an issue before its scheduled time.")
@click.option("--dry-run", is_flag=True, help="Connect to nothing; list what would be sent.")
@pass_app
def send(
    app: App,
    limit: int | None,
    rate: float | None,
    connections: int | None,
    send_now: bool,
    dry_run: bool,
) -> None:
    """Deliver what is due in the outbox ledger to the SMTP relay (settings: smtp_url).

    Resumable, and safe to run on several machines at once against one PostgreSQL database.
    Temporary failures are retried later (until max_defer); a mailbox refused for good marks
    that reader bounced; a refusal of the message itself (policy, size, DMARC) stops the run
    with exit 1 and bounces nobody. Exit 0 only if nothing tried is left in error. If the
    process dies while a message is in flight, or the relay's 250 is lost, that message is
    sent again by the next run (at-least-once): a reader may get it twice, nobody loses it.
    """
    settings = app.settings
    options = {"connections": connections, "send_now": send_now}
    with open_session(settings) as session:
        if dry_run:
            report = send_outbox(session, settings, app.clock, limit, rate, dry_run=True, **options)
            for _id, recipient, purpose in report.planned:
                click.echo(f"{recipient}\t{purpose}")
            click.echo(f"would send: {len(report.planned)}, waiting: {report.remaining}")
            return
        total = min(count_waiting(session), limit or sys.maxsize)
        try:
            with _progress_bar(total) as advance:
                report = send_outbox(
                    session, settings, app.clock, limit, rate, progress=advance, **options
                )
        except RelayError as exc:
            click.echo(exc.report.summary())
            raise
        note(app, session, "outbox.send", "outbox", report.summary())
    click.echo(report.summary())
    if not report.ok:
        click.echo("error: messages left undelivered (see deferred, expired)", err=True)
        sys.exit(1)


def _progress_bar(total: int):
    """A Rich bar on a terminal; nothing otherwise (logs and pipes stay clean)."""
    if not sys.stderr.isatty() or total == 0:
        return nullcontext(None)

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
            yield lambda _row, _outcome: progress.advance(task)

    return bar()


@click.group("outbox")
def outbox() -> None:
    """The outbox ledger: what waits to be sent, and exports of it."""


@outbox.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--week", metavar="WEEK", help="The issue's week, e.g. 2026-W48 (default: newest).")
@click.option("--maildir", is_flag=True, help="Write a Maildir (new/, cur/, tmp/) instead.")
@pass_app
def export(app: App, directory: Path, week: str | None, maildir: bool) -> None:
    """Write an issue's messages from the ledger as .eml files (or a Maildir) in DIRECTORY.

    Each message is made as the sender makes it (dated now, not DKIM-signed). Exporting
    again replaces the same files.
    """
    with open_session(app.settings) as session:
        report = export_outbox(
            session, app.settings, app.clock, directory, week.upper() if week else None,
            maildir=maildir,
        )  # fmt: skip
    click.echo(f"{report.week}: {report.written} message(s) written to {report.directory}")
    if report.missing:
        click.echo(f"{report.missing} queued before the ledger with their file gone", err=True)
