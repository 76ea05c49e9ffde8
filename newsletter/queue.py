"""The editors' queue: validated fields in, content items out (add, edit, drop, list,
approve or reject proposals)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, select

from newsletter.errors import ConflictError, InputError, NotFoundError
from newsletter.items_table import KINDS, ItemRow, item_row, json_ready, queue_query
from newsletter.models import ContentItem
from newsletter.weeks import Clock, parse_week_key

TITLE_MAX = 200
SUMMARY_MAX = 600


@dataclass(frozen=True)
class ItemFields:
    """What an editor can say about an item, before it is stored."""

    kind: str
    title: str
    url: str
    summary: str = ""
    body: str = ""
    image_url: str | None = None
    image_alt: str | None = None
    available_from: date | None = None
    available_until: date | None = None
    pinned_week: str | None = None
    priority: int = 0

    def digest(self) -> str:
        """A hash of the content, to tell an unchanged re-import from an update."""
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def check_url(value: str, field: str) -> str:
    """An absolute http(s) URL, or an InputError naming the field."""
    value = (value or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise InputError(f"{field}: {value!r} is not an http(s) URL")
    return value


def validate(item: ItemFields) -> ItemFields:
    """Check and normalise every field; raise InputError naming the first wrong one."""
    if item.kind not in KINDS:
        raise InputError(f"kind: {item.kind!r} is not one of {', '.join(KINDS)}")
    title = " ".join((item.title or "").split())
    if not title:
        raise InputError("title: is empty")
    if len(title) > TITLE_MAX:
        raise InputError(f"title: {len(title)} characters, at most {TITLE_MAX}")
    summary = " ".join((item.summary or "").split())
    if len(summary) > SUMMARY_MAX:
        raise InputError(f"summary: {len(summary)} characters, at most {SUMMARY_MAX}")
    image_url = check_url(item.image_url, "image") if item.image_url else None
    image_alt = " ".join((item.image_alt or "").split()) or None
    if image_url and not image_alt:
        raise InputError("image_alt: an image needs a text alternative (--image-alt)")
    if item.available_from and item.available_until and item.available_from > item.available_until:
        raise InputError(f"until: {item.available_until} is before from: {item.available_from}")
    week = parse_week_key(item.pinned_week) if item.pinned_week else None
    if not isinstance(item.priority, int) or isinstance(item.priority, bool):
        raise InputError(f"priority: {item.priority!r} is not an integer")
    return replace(
        item,
        title=title,
        url=check_url(item.url, "url"),
        summary=summary,
        body=(item.body or "").strip(),
        image_url=image_url,
        image_alt=image_alt if image_url else None,
        pinned_week=week,
    )


def _apply(row: ContentItem, item: ItemFields) -> None:
    for f in fields(ItemFields):
        setattr(row, f.name, getattr(item, f.name))
    row.content_hash = item.digest()


def add_item(
    session: Session,
    item: ItemFields,
    clock: Clock,
    *,
    source: str = "cli",
    source_key: str | None = None,
    status: str = "queued",
) -> ContentItem:
    """Queue a new item (validated); returns the stored row."""
    item = validate(item)
    now = clock()
    row = ContentItem(
        kind=item.kind,
        title=item.title,
        url=item.url,
        status=status,
        source=source,
        source_key=source_key,
        created_at=now,
        updated_at=now,
        queued_at=now if status == "queued" else None,
    )
    _apply(row, item)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def fields_of(row: ContentItem) -> ItemFields:
    """The editable fields of a stored item."""
    return ItemFields(**{f.name: getattr(row, f.name) for f in fields(ItemFields)})


def get_item(session: Session, item_id: int) -> ContentItem:
    row = session.get(ContentItem, item_id)
    if row is None:
        raise NotFoundError(f"item: no item with id {item_id}")
    return row


def edit_item(
    session: Session, item_id: int, changes: dict, clock: Clock, *, force: bool = False
) -> ContentItem:
    """Change some fields of an item; a used item needs `force` (its issue stays as sent)."""
    row = get_item(session, item_id)
    if row.status == "used" and not force:
        raise ConflictError(
            f"item {item_id}: already used in an issue; editing it does not change what was "
            "sent (use --force to edit anyway)"
        )
    if row.status in ("dropped", "rejected"):
        raise ConflictError(f"item {item_id}: is {row.status}")
    item = validate(replace(fields_of(row), **changes))
    _apply(row, item)
    row.updated_at = clock()
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def drop_item(session: Session, item_id: int, clock: Clock) -> ContentItem:
    """Take an item out of the queue for good; a used item is history and stays."""
    row = get_item(session, item_id)
    if row.status == "used":
        raise ConflictError(f"item {item_id}: already used in an issue, it cannot be dropped")
    row.status = "dropped"
    row.updated_at = clock()
    session.add(row)
    session.commit()
    return row


def approve_item(
    session: Session, item_id: int, clock: Clock, priority: int | None = None
) -> ContentItem:
    """Queue a proposed item (from a feed). Again on a queued item only sets the priority;
    any other item (dropped, rejected, used) is refused: approving is for proposals."""
    row = get_item(session, item_id)
    if row.status not in ("proposed", "queued"):
        raise ConflictError(
            f"item {item_id}: it is {row.status}, only a proposed item can be approved"
        )
    now = clock()
    if row.status == "proposed":
        row.status = "queued"
        row.queued_at = now
    if priority is not None:
        row.priority = priority
    row.updated_at = now
    session.add(row)
    session.commit()
    return row


def reject_item(session: Session, item_id: int, clock: Clock) -> ContentItem:
    """Hide an item for good: later fetches of the same entry never bring it back."""
    row = get_item(session, item_id)
    if row.status == "used":
        raise ConflictError(f"item {item_id}: already used in an issue, it cannot be rejected")
    if row.status != "rejected":
        row.status = "rejected"
        row.queued_at = None
        row.updated_at = clock()
        session.add(row)
        session.commit()
    return row


def list_items(
    session: Session, kind: str | None = None, status: str | None = None
) -> list[ItemRow]:
    """Items by kind and status, in queue order (the query `jeudis item list` runs too)."""
    sql, params = queue_query(kind, status)
    return [item_row(row) for row in session.connection().execute(sa.text(sql), params).mappings()]


def queued_items(session: Session) -> list[ContentItem]:
    """Every item the pick may choose from."""
    return list(session.exec(select(ContentItem).where(ContentItem.status == "queued")))


def item_as_dict(row: ContentItem) -> dict:
    """A JSON-ready view of an item, its fields in their declared order (as `item list`)."""
    # Not model_dump(): it follows the order in which the ORM happened to load the attributes.
    return json_ready({name: getattr(row, name) for name in ContentItem.model_fields})
