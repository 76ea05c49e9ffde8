"""`jeudis item add|show|edit|drop|approve|reject`: one item at a time, through the ORM; every
change is noted in the audit log. `jeudis item` loads this module on first use of one of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from newsletter.cli import App, pass_app
from newsletter.cli.editors import note
from newsletter.db import open_session
from newsletter.errors import InputError
from newsletter.items_table import KINDS
from newsletter.queue import (
    ItemFields,
    add_item,
    approve_item,
    drop_item,
    edit_item,
    get_item,
    item_as_dict,
    reject_item,
)
from newsletter.weeks import parse_date


def _read_body(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"--body-file: {path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"--body-file: {path}: is not UTF-8 text") from None


def item_options(required: bool):
    """The options shared by `add` and `edit` (all optional for `edit`)."""

    def decorate(command):
        options = [
            click.option("--kind", type=click.Choice(KINDS), required=required),
            click.option("--title", required=required),
            click.option("--url", required=required, help="The link readers follow."),
            click.option("--summary", help="One or two sentences, plain text."),
            click.option(
                "--body-file", type=click.Path(dir_okay=False), help="A Markdown file for the body."
            ),
            click.option("--image", "image_url", help="Image URL (needs --image-alt)."),
            click.option("--image-alt", help="Text alternative for the image."),
            click.option(
                "--from",
                "available_from",
                metavar="DATE",
                help="First date it may go out (YYYY-MM-DD).",
            ),
            click.option(
                "--until", "available_until", metavar="DATE", help="Last date it may go out."
            ),
            click.option(
                "--week", "pinned_week", metavar="2026-W49", help="Pin it to that ISO week's issue."
            ),
            click.option("--priority", type=int, help="Higher goes out first (default 0)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _changes(values: dict) -> dict:
    changes = {k: v for k, v in values.items() if v is not None}
    body = _read_body(changes.pop("body_file", None))
    if body is not None:
        changes["body"] = body
    for key in ("available_from", "available_until"):
        if key in changes:
            changes[key] = parse_date(changes[key], "--from" if key.endswith("from") else "--until")
    return changes


@click.command("add")
@item_options(required=True)
@pass_app
def add(app: App, **values) -> None:
    """Queue a new item."""
    changes = _changes(values)
    fields = ItemFields(**{"priority": 0, **changes})
    with open_session(app.settings) as session:
        row = add_item(session, fields, app.clock)
        note(app, session, "item.add", f"item:{row.id}", row.title)
    click.echo(f"queued {row.kind} #{row.id}: {row.title}")


@click.command("show")
@click.argument("item_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def show(app: App, item_id: int, as_json: bool) -> None:
    """Show one item in full."""
    with open_session(app.settings) as session:
        data = item_as_dict(get_item(session, item_id))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    body = data.pop("body")
    for key, value in data.items():
        if value not in (None, ""):
            click.echo(f"{key:16} {value}")
    if body:
        click.echo("\n" + body)


@click.command("edit")
@click.argument("item_id", type=int)
@item_options(required=False)
@click.option("--force", is_flag=True, help="Edit an item already used (its issue stays as sent).")
@pass_app
def edit(app: App, item_id: int, force: bool, **values) -> None:
    """Change some fields of an item."""
    changes = _changes(values)
    if not changes:
        raise InputError("edit: nothing to change (give at least one option)")
    with open_session(app.settings) as session:
        row = edit_item(session, item_id, changes, app.clock, force=force)
        note(app, session, "item.edit", f"item:{row.id}", ", ".join(sorted(changes)))
    click.echo(f"updated {row.kind} #{row.id}: {row.title}")


@click.command("drop")
@click.argument("item_id", type=int)
@pass_app
def drop(app: App, item_id: int) -> None:
    """Take an item out of the queue (used items are history and stay)."""
    _change(app, "item.drop", "dropped", lambda session: drop_item(session, item_id, app.clock))


@click.command("approve")
@click.argument("item_id", type=int)
@click.option("--priority", type=int)
@pass_app
def approve(app: App, item_id: int, priority: int | None) -> None:
    """Queue a proposed news item (from a feed)."""
    _change(
        app,
        "item.approve",
        "approved",
        lambda session: approve_item(session, item_id, app.clock, priority=priority),
    )


@click.command("reject")
@click.argument("item_id", type=int)
@pass_app
def reject(app: App, item_id: int) -> None:
    """Hide a proposed news item for good."""
    _change(
        app, "item.reject", "rejected", lambda session: reject_item(session, item_id, app.clock)
    )


def _change(app: App, action: str, done: str, change) -> None:
    """One change to one item: made, written to the log with its author, and said."""
    with open_session(app.settings) as session:
        row = change(session)
        note(app, session, action, f"item:{row.id}", row.title)
    click.echo(f"{done} {row.kind} #{row.id}: {row.title}")
