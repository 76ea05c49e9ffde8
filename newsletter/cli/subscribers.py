"""CLI commands: `jeudis subscriber add|import|list|remove|invite|export|forget`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from newsletter import privacy, signup, subscribers
from newsletter.audit import cli_actor
from newsletter.cli import App, pass_app
from newsletter.cli.editors import note
from newsletter.db import open_session
from newsletter.models import SUBSCRIBER_STATUSES


@click.group("subscriber")
def subscriber() -> None:
    """Manage the readers: add, import a CSV, list, remove, invite (double opt-in)."""


@subscriber.command("add")
@click.argument("email")
@click.option("--name", default="", help="The reader's name, as it should appear.")
@click.option(
    "--reactivate", is_flag=True, help="Subscribe again an address that unsubscribed or bounced."
)
@pass_app
def add_command(app: App, email: str, name: str, reactivate: bool) -> None:
    """Subscribe EMAIL now (no confirmation message: you vouch for the reader's consent)."""
    with open_session(app.settings) as session:
        change = subscribers.add(session, app.clock, email, name, reactivate=reactivate)
        if change.outcome != "unchanged":
            note(
                app, session, "subscriber.add", f"subscriber:{change.subscriber.id}", change.outcome
            )
    click.echo(f"{change.outcome}: {change.subscriber.email}")


@subscriber.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--reactivate",
    is_flag=True,
    help="Subscribe again the addresses that unsubscribed or bounced (default: skip them).",
)
@pass_app
def import_command(app: App, file: Path, reactivate: bool) -> None:
    """Merge a CSV file of readers (UTF-8, `;` or `,`, a header row naming an email column).

    Bad rows are listed as FILE:LINE and the good ones are kept; the exit code is then 2.
    """
    if not file.is_file():
        raise click.BadParameter(f"{file}: no such file", param_hint="FILE")
    with open_session(app.settings) as session:
        report = subscribers.import_csv(session, app.clock, file, reactivate=reactivate)
        summary = (
            f"added: {report.added}, updated: {report.updated}, "
            f"skipped-forgotten: {report.skipped_forgotten}"
        )
        note(app, session, "subscriber.import", f"file:{file.name}", summary)
    forgotten = report.skipped_forgotten
    click.echo(
        f"added: {report.added}, updated: {report.updated}, unchanged: {report.unchanged}, "
        f"skipped-unsubscribed: {report.skipped_unsubscribed}, "
        f"skipped-bounced: {report.skipped_bounced}, "
        + (f"skipped-forgotten: {forgotten}, " if forgotten else "")
        + f"duplicates merged: {report.duplicates}, bad rows: {len(report.bad_rows)}"
    )
    for bad in report.bad_rows:
        click.echo(bad.describe(file), err=True)
    if report.bad_rows:
        sys.exit(2)


@subscriber.command("list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_app
def list_command(app: App, status: str | None, as_json: bool) -> None:
    """List the subscribers by address."""
    with open_session(app.settings) as session:
        rows = subscribers.list_subscribers(session, status)
    if as_json:
        data = [{f: _plain(getattr(row, f)) for f in privacy.SUBSCRIBER_FIELDS} for row in rows]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for row in rows:
        line = f"{row.email}\t{row.status}\t{row.name}"
        if row.status != "active":  # why and when: a bounce's diagnostic, a complaint, ...
            line += f"\t{row.status_changed_at:%Y-%m-%d %H:%M}\t{row.status_reason or ''}"
        click.echo(line)


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


@subscriber.command("remove")
@click.argument("email")
@pass_app
def remove_command(app: App, email: str) -> None:
    """Unsubscribe EMAIL (its history is kept; it will not be re-imported by accident)."""
    with open_session(app.settings) as session:
        row = subscribers.remove(session, app.clock, email)
        note(app, session, "subscriber.remove", f"subscriber:{row.id}")
    click.echo(f"unsubscribed: {row.email}")


@subscriber.command("invite")
@click.argument("email")
@click.option("--name", default="", help="The reader's name, as it should appear.")
@pass_app
def invite_command(app: App, email: str, name: str) -> None:
    """Double opt-in: queue a confirmation message for EMAIL (sent by `jeudis send`)."""
    with open_session(app.settings) as session:
        invitation = signup.invite(session, app.settings, app.clock, email, name)
        if invitation.delivery is not None:
            note(app, session, "subscriber.invite", f"subscriber:{invitation.subscriber.id}")
    address = invitation.subscriber.email
    if invitation.delivery is not None:
        click.echo(f"confirmation queued in the outbox: {address}")
    elif invitation.held == "active":
        click.echo(f"already active: {address}")
    elif invitation.held == "recent":
        hours = f"{app.settings.signup_confirm_interval_hours:g}"
        click.echo(f"confirmation already sent in the last {hours} h: {address}")
    else:
        click.echo(f"confirmation already waiting in the outbox: {address}")


@subscriber.command("export")
@click.argument("email")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@pass_app
def export_command(app: App, email: str, output: Path | None) -> None:
    """Right of access: everything held about EMAIL, as JSON (subscriber, consent, deliveries,
    history)."""
    address = subscribers.normalise_email(email)
    with open_session(app.settings) as session:
        data = privacy.export_reader(session, address)
        target = f"subscriber:{data['subscriber']['id']}" if data["subscriber"] else ""
        note(app, session, "subscriber.export", target)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        output.chmod(0o600)
        click.echo(f"exported: {address} -> {output}", err=True)


@subscriber.command("forget")
@click.argument("email")
@pass_app
def forget_command(app: App, email: str) -> None:
    """Right to erasure: delete EMAIL's data, keep only a hash so no import adds it again
    (the person's own sign-up through the form, once confirmed, still can)."""
    address = subscribers.normalise_email(email)
    with open_session(app.settings) as session:
        done = privacy.forget_reader(session, app.settings, app.clock, cli_actor(), address)
    if done.already:
        click.echo(f"already forgotten: {address}")
    elif done.held:
        click.echo(f"forgotten: {address} ({done.deliveries} deliveries blanked)")
    else:
        click.echo(f"forgotten: {address} (nothing was held; it will not be imported)")
