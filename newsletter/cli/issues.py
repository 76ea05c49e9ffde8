"""`jeudis issue subject W "…"`: an editor's own subject for a week's issue."""

from __future__ import annotations

import click

from newsletter.audit import cli_actor
from newsletter.cli import App, pass_app
from newsletter.db import open_session
from newsletter.errors import InputError
from newsletter.subjects import chosen_subject, set_subject
from newsletter.weeks import parse_week_key


@click.group("issue")
def issue() -> None:
    """One week's issue (a week is written like 2026-W49)."""


@issue.command("subject")
@click.argument("week")
@click.argument("text", required=False)
@click.option("--clear", is_flag=True, help="Forget the subject: the news headline is used.")
@pass_app
def subject(app: App, week: str, text: str | None, clear: bool) -> None:
    """Show or set the subject of WEEK's issue (before it is built; at most 60 characters).

    Without TEXT, prints the subject set for WEEK (or says the headline will be used).
    """
    week = parse_week_key(week)
    if clear and text is not None:
        raise InputError("subject: give a TEXT or --clear, not both")
    with open_session(app.settings) as session:
        if text is None and not clear:
            chosen = chosen_subject(session, week)
            click.echo(chosen if chosen else f"{week}: no subject set, the news headline is used")
            return
        shown = set_subject(session, week, "" if clear else text, app.clock, cli_actor())
    if shown is None:
        click.echo(f"{week}: subject cleared, the news headline is used")
    else:
        click.echo(f"{week}: {shown}")
