"""CLI commands: `jeudis editor add|list|remove|password` and `jeudis log`."""

from __future__ import annotations

import json
import sys

import click
from sqlmodel import Session

from newsletter import accounts
from newsletter.audit import as_dict, cli_actor, entries, record
from newsletter.cli import App, pass_app
from newsletter.db import open_session
from newsletter.errors import InputError
from newsletter.models import EDITOR_ROLES


def note(app: App, session: Session, action: str, target: str = "", detail: str = "") -> None:
    """Record a change made from the command line, by the OS user running it."""
    record(session, cli_actor(), action, target, detail, clock=app.clock)


def read_password(from_stdin: bool) -> str:
    """From the first line of stdin, or asked twice without echo."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"Password (at least {accounts.PASSWORD_MIN} characters)",
            hide_input=True,
            confirmation_prompt=True,
            err=True,
        )
    if not password:
        raise InputError("password: is empty")
    return password


stdin_option = click.option(
    "--password-stdin",
    "from_stdin",
    is_flag=True,
    help="Read the password from stdin's first line.",
)


@click.group("editor")
def editor() -> None:
    """Manage the desk's accounts: an editor queues, edits, approves and previews; an admin
    also sends tests and manages feeds, readers and accounts."""


@editor.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(EDITOR_ROLES), default="editor", show_default=True)
@stdin_option
@pass_app
def add_command(app: App, name: str, role: str, from_stdin: bool) -> None:
    """Create the account NAME (the password is asked, or read with --password-stdin)."""
    accounts.editors.check_name(name)
    password = read_password(from_stdin)
    with open_session(app.settings) as session:
        row = accounts.add_editor(session, app.clock, cli_actor(), name, password, role)
    click.echo(f"added: {row.name} ({row.role})")
    if app.settings.desk_password_hash:
        click.echo(
            "note: desk_password_hash is ignored now that accounts exist; remove it from "
            "jeudis.toml",
            err=True,
        )


@editor.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_app
def list_command(app: App, as_json: bool) -> None:
    """List the accounts and their roles."""
    with open_session(app.settings) as session:
        rows = accounts.list_editors(session)
    if as_json:
        data = [
            {"name": r.name, "role": r.role, "created_at": r.created_at.isoformat()} for r in rows
        ]
        click.echo(json.dumps(data, indent=2))
        return
    if not rows:
        click.echo("no accounts (add one with `jeudis editor add NAME --role admin`)")
    for row in rows:
        click.echo(f"{row.name}\t{row.role}\t{row.created_at:%Y-%m-%d}")


@editor.command("remove")
@click.argument("name")
@pass_app
def remove_command(app: App, name: str) -> None:
    """Delete the account NAME and end its sessions (its entries in the log stay)."""
    with open_session(app.settings) as session:
        row = accounts.remove_editor(session, app.clock, cli_actor(), name)
    click.echo(f"removed: {row.name}")


@editor.command("password")
@click.argument("name")
@stdin_option
@pass_app
def password_command(app: App, name: str, from_stdin: bool) -> None:
    """Set a new password for NAME; every session of NAME ends."""
    accounts.editors.check_name(name)
    password = read_password(from_stdin)
    with open_session(app.settings) as session:
        ended = accounts.set_password(session, app.clock, cli_actor(), name, password)
    click.echo(f"password changed: {name.strip().lower()} ({ended} session(s) ended)")


@click.command("log")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--target", help="Only the entries about one thing, e.g. item:12.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, newest first.")
@pass_app
def log_command(app: App, limit: int, target: str | None, as_json: bool) -> None:
    """Who changed what and when (desk, CLI, readers' own links), newest first."""
    with open_session(app.settings) as session:
        rows = entries(session, target=target, limit=limit)
    if as_json:
        click.echo(json.dumps([as_dict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    tz = app.settings.tz
    for row in rows:
        when = row.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{when}\t{row.actor}\t{row.action}\t{row.target}\t{row.detail}".rstrip())
