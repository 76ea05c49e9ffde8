"""CLI commands: `feed add|list|remove|fetch`, followed RSS/Atom sources of proposed news."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from newsletter import feed_service
from newsletter.cli import App, pass_app
from newsletter.cli.editors import note
from newsletter.db import open_session
from newsletter.models import Feed


@click.group("feed")
def feed() -> None:
    """Follow RSS/Atom feeds; their entries become proposed news."""


@feed.command("add")
@click.argument("url")
@click.option("--name", help="Name shown to editors (default: the feed's own title).")
@click.option("--auto", is_flag=True, help="Trusted source: queue its entries directly.")
@pass_app
def add(app: App, url: str, name: str | None, auto: bool) -> None:
    """Follow the feed at URL (http or https)."""
    url = feed_service.check_feed_url(url)
    with open_session(app.settings) as session:
        item, created = feed_service.add_feed(session, url, app.clock, name=name, auto=auto)
        if created:
            note(app, session, "feed.add", f"feed:{item.id}", item.url)
    if created:
        click.echo(f"feed {item.id} added: {item.url}{' (auto)' if item.auto else ''}")
    else:
        click.echo(f"feed {item.id} already exists: {item.url}")


@feed.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """Show the followed feeds and the health of each."""
    with open_session(app.settings) as session:
        feeds = feed_service.list_feeds(session)
    if as_json:
        click.echo(json.dumps([_feed_dict(f) for f in feeds], ensure_ascii=False, indent=2))
        return
    if not feeds:
        click.echo("no feeds (add one with `jeudis feed add URL`)")
        return
    for f in feeds:
        error = f"{_when(f.last_error_at)} {f.last_error}" if f.last_error else "-"
        click.echo(
            f"{f.id}\t{f.name or '-'}\t{f.url}\tauto={'yes' if f.auto else 'no'}"
            f"\tlast ok: {_when(f.last_ok_at)}\tlast error: {error}\tentries: {f.entries_seen}"
        )


@feed.command("remove")
@click.argument("feed_id", type=int)
@pass_app
def remove(app: App, feed_id: int) -> None:
    """Stop following a feed (its pending proposals go too)."""
    with open_session(app.settings) as session:
        gone, withdrawn = feed_service.remove_feed(session, feed_id)
        note(app, session, "feed.remove", f"feed:{feed_id}", gone.url)
    click.echo(f"feed {feed_id} removed: {gone.url} ({withdrawn} proposals withdrawn)")


@feed.command("fetch")
@click.argument("feed_ids", nargs=-1, type=int)
@pass_app
@click.pass_context
def fetch(ctx: click.Context, app: App, feed_ids: tuple[int, ...]) -> None:
    """Fetch all feeds (or the given IDs); exit 1 if any of them failed."""
    with open_session(app.settings) as session:
        count = len(feed_ids) or len(feed_service.list_feeds(session))
        if sys.stderr.isatty() and count:
            reports = _fetch_with_progress(session, app, feed_ids, count)
        else:
            reports = feed_service.fetch_all(session, app.settings, app.clock, feed_ids or None)
    if not reports:
        click.echo("no feeds to fetch")
    for report in reports:
        click.echo(report.line())
    if any(not r.ok for r in reports):
        ctx.exit(1)


def _fetch_with_progress(session, app: App, feed_ids, count: int):
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("fetching feeds", total=count)
        return feed_service.fetch_all(
            session,
            app.settings,
            app.clock,
            feed_ids or None,
            on_fetched=lambda: progress.advance(task),
        )


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


def _feed_dict(f: Feed) -> dict:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": f.id,
        "name": f.name,
        "url": f.url,
        "auto": f.auto,
        "last_fetched_at": iso(f.last_fetched_at),
        "last_ok_at": iso(f.last_ok_at),
        "last_error": f.last_error,
        "last_error_at": iso(f.last_error_at),
        "entries_seen": f.entries_seen,
    }
