"""The content_item table in plain SQL: its vocabulary, its columns, the queue's order, and
its rows as Python values, without the ORM.

`queue.list_items` (the desk) and `jeudis item list` run the same query and read the rows the
same way: the desk on its session, the list straight through sqlite3 when it can (else through
SQLAlchemy Core), so the list starts without SQLModel or pydantic. `ContentItem` in `models` is
the same table seen by the ORM; a test checks that the two never drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from newsletter.errors import InputError

KINDS = ("news", "example", "tool")
ITEM_STATUSES = ("proposed", "queued", "used", "rejected", "dropped")


class ItemRow(NamedTuple):
    """One content item read from its table: ContentItem's fields, in its order (that of its
    JSON), without the ORM."""

    id: int
    kind: str
    status: str
    title: str
    url: str
    summary: str
    body: str
    image_url: str | None
    image_alt: str | None
    available_from: date | None
    available_until: date | None
    pinned_week: str | None
    priority: int
    source: str
    source_key: str | None
    source_name: str | None
    content_hash: str | None
    feed_id: int | None
    published_at: datetime | None
    created_at: datetime
    queued_at: datetime | None
    updated_at: datetime
    issue_id: int | None


ITEM_COLUMNS = ItemRow._fields
DATE_COLUMNS = frozenset({"available_from", "available_until"})
# Stored as UTC without an offset (models.AwareDateTime), read back as aware datetimes.
DATETIME_COLUMNS = frozenset({"published_at", "created_at", "queued_at", "updated_at"})


def queue_query(kind: str | None = None, status: str | None = None) -> tuple[str, dict]:
    """The SQL (with `:name` parameters) of the items of a kind and a status, in queue order
    (kind, then higher priority, then the oldest queued)."""
    if kind and kind not in KINDS:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if status and status not in ITEM_STATUSES:
        raise InputError(f"status: {status!r} is not one of {', '.join(ITEM_STATUSES)}")
    params = {name: value for name, value in (("kind", kind), ("status", status)) if value}
    where = " AND ".join(f"{name} = :{name}" for name in params)
    return (
        f"SELECT {', '.join(ITEM_COLUMNS)} FROM content_item"
        + (f" WHERE {where}" if where else "")
        + " ORDER BY kind, priority DESC, queued_at, id",
        params,
    )


def item_row(row: Mapping[str, Any]) -> ItemRow:
    """A row of `queue_query` as Python values: SQLite hands dates over as ISO text (read as
    SQLAlchemy reads them, with `fromisoformat`), PostgreSQL as naive date and time values."""
    return ItemRow(*(_value(name, row[name]) for name in ITEM_COLUMNS))


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATE_COLUMNS:
        return date.fromisoformat(value) if isinstance(value, str) else value
    if name in DATETIME_COLUMNS:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC)
    return value


def json_ready(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An item's fields for JSON: dates and times in ISO 8601."""
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in fields.items()}
