"""`jeudis item …`: the editors' queue on the command line.

`item list` runs the queue's plain query (newsletter/items_table.py), straight through sqlite3
when the instance is a SQLite file at the head revision, so it starts without SQLAlchemy's ORM,
SQLModel or Alembic. The commands on one item are in `one_item` and load on first use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import click
from rich.console import Console
from rich.table import Table

from newsletter.cli import App, LazyGroup, pass_app
from newsletter.config import Settings
from newsletter.items_table import (
    ITEM_STATUSES,
    KINDS,
    ItemRow,
    item_row,
    json_ready,
    queue_query,
)
from newsletter.sqlite_file import read_at_head

ONE_ITEM = ("add", "show", "edit", "drop", "approve", "reject")


def read_items(settings: Settings, sql: str, params: Mapping[str, object]) -> list[ItemRow]:
    """The rows of one item query, at once from a SQLite file at the head revision, else
    through SQLAlchemy, which creates, migrates or reports the database as for any command."""
    rows = read_at_head(settings, sql, params)
    if rows is None:
        # Imported here, not at the top, for start-up: the quick read above needs neither.
        import sqlalchemy as sa

        from newsletter.db import engine_for

        with engine_for(settings).connect() as conn:
            rows = conn.execute(sa.text(sql), params).mappings().all()
    return [item_row(row) for row in rows]


@click.group("item", cls=LazyGroup, lazy={name: f"one_item:{name}" for name in ONE_ITEM})
def item() -> None:
    """Queue, list and edit news, inspiring examples and tools."""


@item.command("list")
@click.option("--kind", type=click.Choice(KINDS))
@click.option("--status", type=click.Choice(ITEM_STATUSES))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def list_(app: App, kind, status, as_json) -> None:
    """List items (all, or one kind / status)."""
    rows = read_items(app.settings, *queue_query(kind, status))
    if as_json:
        data = [json_ready(r._asdict()) for r in rows]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table("id", "kind", "status", "prio", "window", "week", "title", box=None)
    for r in rows:
        window = (
            f"{r.available_from or ''}…{r.available_until or ''}"
            if (r.available_from or r.available_until)
            else ""
        )
        table.add_row(
            str(r.id), r.kind, r.status, str(r.priority), window, r.pinned_week or "", r.title
        )
    Console().print(table)
    click.echo(f"{len(rows)} item(s)")
