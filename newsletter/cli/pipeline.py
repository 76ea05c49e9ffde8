"""`jeudis init | import | plan | preview | build`: the pipeline verbs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from newsletter.build import BuildReport, build_issue, calendar, preview_issue
from newsletter.cli import App, pass_app
from newsletter.cli.editors import note
from newsletter.content import import_content
from newsletter.db import instance_secret, open_session
from newsletter.files import write_atomic
from newsletter.items_table import KINDS
from newsletter.pick import closes_on
from newsletter.render import as_preview
from newsletter.weeks import parse_date, upcoming_thursday

RUNWAY_WARNING_WEEKS = 3
DATE_HELP = "A date in the issue's week (default: the next Thursday)."


def today(app: App) -> date:
    """Today in the newsletter's time zone."""
    return app.clock().astimezone(app.settings.tz).date()


def _thursday_option(app: App, value: str | None) -> date:
    return parse_date(value, "--date") if value else upcoming_thursday(today(app))


@click.command("init")
@pass_app
def init(app: App) -> None:
    """Create or upgrade the instance in $JEUDIS_HOME (database schema, folders)."""
    settings = app.settings
    with open_session(settings):
        pass
    for folder in (settings.outbox_dir, settings.archive_dir, settings.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    instance_secret(settings)  # the signing key exists from now on
    click.echo(f"instance ready in {settings.home.resolve()}")


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@pass_app
def import_(app: App, path: Path) -> None:
    """Import content files (Markdown + front matter) from a folder or one file.

    Re-importing updates changed files and never duplicates. Bad files are reported by
    path, line and field (exit 2); the good ones are imported all the same.
    """
    with open_session(app.settings) as session:
        report = import_content(session, path, app.clock, app.settings.content_root)
        detail = f"{len(report.added)} added, {len(report.updated)} updated"
        note(app, session, "item.import", f"file:{path.name}", detail)
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    click.echo(
        f"imported {path}: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.kept)} already used or dropped, "
        f"{len(report.errors)} bad"
    )
    if report.errors:
        raise SystemExit(2)


def _plan_json(view) -> str:
    return json.dumps(
        {
            "weeks": [
                {
                    "thursday": w.thursday.isoformat(),
                    "week": w.week,
                    "number": w.number,
                    "built": w.built,
                    "missing": list(w.selection.missing),
                    "items": {
                        k: {"id": v.id, "title": v.title} for k, v in w.selection.chosen.items()
                    },
                }
                for w in view.weeks
            ],
            "runway": view.runway,
            "dry_since": {k: (v.isoformat() if v else None) for k, v in view.dry_since.items()},
            "queued": view.queued,
            "proposed": view.proposed,
            "never": [
                {
                    "id": item.id,
                    "kind": item.kind,
                    "title": item.title,
                    "closes": closes_on(item).isoformat(),
                }
                for item in view.never
            ],
        },
        ensure_ascii=False,
        indent=2,
    )


@click.command("plan")
@click.option("--weeks", default=8, show_default=True, type=click.IntRange(1, 104))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def plan_(app: App, weeks: int, as_json: bool) -> None:
    """The editorial calendar: what each coming Thursday gets, and the runway per kind."""
    with open_session(app.settings) as session:
        view = calendar(session, app.settings, today(app), weeks)
    if as_json:
        click.echo(_plan_json(view))
        return
    console = Console(highlight=False)
    for w in view.weeks:
        state = "built" if w.built else "planned"
        console.print(f"[bold]{w.thursday}[/]  {w.week}  n°{w.number}  ({state})")
        for kind in KINDS:
            chosen = w.selection.chosen.get(kind)
            text = f"#{chosen.id} {escape(chosen.title)}" if chosen else "[bold red]— dry —[/]"
            console.print(f"  {kind:8} {text}", overflow="ellipsis", no_wrap=True)
    console.print("runway:")
    for kind in KINDS:
        dry = view.dry_since[kind]
        line = f"  {kind:8} {view.runway[kind]} week(s), {view.queued[kind]} queued"
        if view.proposed[kind]:
            line += f" (+{view.proposed[kind]} proposed, waiting for approval)"
        if dry is not None:
            style = "bold red" if view.runway[kind] < RUNWAY_WARNING_WEEKS else "yellow"
            line = f"[{style}]{line}, runs dry on {dry}[/]"
        else:
            line += f", enough for the {weeks} week(s) shown"
        console.print(line)
    _print_never(console, view.never)


def _print_never(console: Console, never: list) -> None:
    if not never:
        return
    console.print("[bold red]will never go out[/] (the window closes before their turn):")
    for item in never:
        console.print(
            f"  {item.kind:8} #{item.id} {escape(item.title)} (closes {closes_on(item)})",
            overflow="ellipsis",
            no_wrap=True,
        )


@click.command("preview")
@click.option(
    "--date", "day", metavar="DATE", help="A date in the issue's week (default: next Thursday)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default: $JEUDIS_HOME/preview/<week>.html).",
)
@click.option(
    "--text",
    "text_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plain-text part there.",
)
@pass_app
def preview(app: App, day: str | None, out: Path | None, text_out: Path | None) -> None:
    """Render the issue of a coming Thursday to HTML, without consuming anything."""
    settings = app.settings
    with open_session(settings) as session:
        info, _, rendered = preview_issue(session, settings, _thursday_option(app, day), today(app))
    shown = as_preview(rendered, settings)  # no personal link in a preview
    out = out or settings.home / "preview" / f"{info.week_key}.html"
    write_atomic(out, shown.html)
    if text_out:
        write_atomic(text_out, shown.text)
    click.echo(f"n°{info.number} of {info.thursday} ({info.week_key}): {rendered.subject}")
    click.echo(f"html: {out}")


def echo_build(report: BuildReport) -> None:
    """What `build` and `demo` print: what was done, when it goes public, who gets it."""
    issue = report.issue
    if report.already_complete:
        click.echo(
            f"{issue.week_key} n°{issue.number} was already built on "
            f"{issue.built_at:%Y-%m-%d %H:%M} UTC: nothing to do"
        )
    else:
        verb = "built" if report.created else "completed"
        click.echo(f"{verb} {issue.week_key} n°{issue.number} ({issue.thursday}): {issue.subject}")
        click.echo(f"{report.written} message(s) written to the outbox")
    click.echo(f"web copy: {report.url} (public from {report.public_at:%Y-%m-%d %H:%M %Z})")
    if report.readers == 0:
        click.echo(
            "warning: no active reader: this issue goes to nobody; add readers with "
            "`jeudis subscriber add` or `jeudis subscriber import` before building",
            err=True,
        )


@click.command("build")
@click.option(
    "--date", "day", metavar="DATE", help="A date in the issue's week (default: next Thursday)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Build a past week or one further ahead than the coming Thursday (a rare repair).",
)
@pass_app
def build(app: App, day: str | None, force: bool) -> None:
    """Pick, record, render and write the outbox for a week (what Thursday's job does).

    Takes the coming Thursday (or this week's, late); a week already built is a no-op. The
    issue's web page and feed entry go public at its send time.
    """
    with open_session(app.settings) as session:
        thursday = _thursday_option(app, day)
        report = build_issue(session, app.settings, thursday, app.clock, force=force)
        if not report.already_complete:
            written = f"{report.written} message(s) written"
            note(app, session, "issue.build", f"issue:{report.issue.week_key}", written)
    echo_build(report)
