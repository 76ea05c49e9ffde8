"""CLI commands: `jeudis inbound`, `jeudis stats` (what comes back and what it says)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from newsletter import returns
from newsletter.cli import App, pass_app
from newsletter.db import open_session
from newsletter.errors import InputError
from newsletter.returns import doctor
from newsletter.weeks import parse_week_key


@click.command("inbound")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Read every new message of this Maildir (then moved to its cur/ folder).",
)
@click.option("--imap", "imap_url", metavar="URL", help="Read the unseen messages of imaps://…")
@click.option("--report", is_flag=True, help="Only show what was read so far and what is kept.")
@pass_app
def inbound(app: App, maildir: Path | None, imap_url: str | None, report: bool) -> None:
    """Turn returning mail into subscriber states: bounces (DSN), complaints (ARF),
    mailto unsubscribes; auto-replies are ignored, anything else is kept for a person.

    With no option, reads one message on standard input (an MTA's pipe transport).
    Reading the same message twice changes nothing.
    """
    if sum(bool(x) for x in (maildir, imap_url, report)) > 1:
        raise InputError("inbound: give one of --maildir, --imap, --report")
    settings = app.settings
    with open_session(settings) as session:
        if report:
            _show_report(returns.inbound_report(session))
            return
        if maildir:
            summary = returns.read_maildir(session, settings, app.clock, maildir)
        elif imap_url:
            summary = returns.read_imap(session, settings, app.clock, imap_url)
        else:
            raw = sys.stdin.buffer.read()
            if not raw.strip():
                raise InputError("inbound: standard input is empty (expected one message)")
            summary = returns.read_one(session, settings, app.clock, raw)
    for outcome in summary.outcomes:
        if outcome.changed or outcome.action == "keep":
            who = outcome.email or "nobody identified"
            what = outcome.changed or "kept for a person"
            click.echo(f"{outcome.message_id or '(no Message-ID)'}\t{outcome.kind}\t{who}\t{what}")
    click.echo(summary.line())


def _show_report(report: returns.stats.InboundReport) -> None:
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(report.kinds.items())) or "nothing read yet"
    click.echo(f"read: {kinds}")
    click.echo(f"kept for a person: {len(report.kept)}")
    for row in report.kept:
        click.echo(
            f"  {row.received_at:%Y-%m-%d %H:%M}\t{row.kind}\t"
            f"{row.message_id or '(no Message-ID)'}\t{row.detail}"
        )


@click.command("stats")
@click.option("--week", help="Only this issue (2026-W48).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_app
def stats(app: App, week: str | None, as_json: bool) -> None:
    """Per issue: recipients, sent, bounces (hard/soft), complaints, unsubscribes, rates.

    Warns when complaints pass 0.1 % or bounces 2 % of the messages sent."""
    week = parse_week_key(week) if week else None
    with open_session(app.settings) as session:
        rows = returns.issue_stats(session, week)
    if week and not rows:
        raise InputError(f"--week: no issue for {week}")
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    click.echo(
        f"{'week':<8}  {'no':>3}  {'recipients':>10}  {'sent':>8}  {'hard':>6}  {'soft':>6}  "
        f"{'complaints':>10}  {'unsubscribes':>12}  {'bounce%':>8}  {'complaint%':>10}"
    )
    for row in rows:
        click.echo(
            f"{row.week:<8}  {row.number:>3}  {row.recipients:>10}  {row.sent:>8}  "
            f"{row.hard_bounces:>6}  {row.soft_bounces:>6}  {row.complaints:>10}  "
            f"{row.unsubscribes:>12}  {row.bounce_rate:>8.2%}  {row.complaint_rate:>10.3%}"
        )
    for row in rows:
        for warning in row.warnings():
            click.echo(f"warning: {warning}", err=True)


@click.command("check")
@pass_app
def check(app: App) -> None:
    """Deliverability doctor (no network): HTTPS links, the DKIM key, DMARC alignment;
    prints the DNS records to publish. Exits 1 when something would hurt delivery."""
    result = doctor.checkup(app.settings)
    for finding in result.findings:
        click.echo(f"{finding.level.upper():<4}  {finding.topic}: {finding.text}")
    click.echo("\nDNS records to publish (a DMARC policy to start with: p=none, then tighten):")
    for record in result.records:
        click.echo(f"  {record}")
    if result.failed:
        click.echo("error: this configuration would hurt delivery (see FAIL above)", err=True)
        sys.exit(1)
