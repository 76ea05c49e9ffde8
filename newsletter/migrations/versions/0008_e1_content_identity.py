"""content identity: one item per content file, whichever folder was imported

Revision ID: e1_content_identity
Revises: a1_instance_secret
Create Date: 2026-11-27 11:50:00

Before this revision a content file's identity was its path under the folder given to
`jeudis import`, so importing `content/` then `content/news` stored each news file twice
(`file:news/x.md` and `file:x.md`), and the copy could be picked again after the first went
out. Identity is now the path under the content root (see newsletter/content.py), which is
the longer key. This data migration keeps one identity per file: the copy that went out in an
issue keeps it (history), or else the copy imported from the root; the other copy loses its
key and, if it was still waiting in the queue, is dropped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e1_content_identity"
down_revision: str | None = "a1_instance_secret"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEMS = sa.table(
    "content_item",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("url", sa.String),
    sa.column("status", sa.String),
    sa.column("source_key", sa.String),
)
WAITING = ("queued", "proposed")


def _same_file(short: dict, long: dict) -> bool:
    # The longer key ends with the shorter one's whole path, and it is the same item.
    rel = short["source_key"].removeprefix("file:")
    return (
        long["source_key"].endswith("/" + rel)
        and long["kind"] == short["kind"]
        and long["url"] == short["url"]
    )


def merges(rows: list[dict]) -> dict[int, dict]:
    """The changes (id -> new values) that leave one key per content file."""
    changes: dict[int, dict] = {}
    for short in sorted(rows, key=lambda r: len(r["source_key"])):
        if short["source_key"] is None:
            continue
        longer = [r for r in rows if r is not short and r["source_key"] and _same_file(short, r)]
        if not longer:
            continue
        long = max(longer, key=lambda r: len(r["source_key"]))
        short_went_out = short["status"] == "used" and long["status"] != "used"
        keeper, other = (short, long) if short_went_out else (long, short)
        keeper["source_key"], other["source_key"] = long["source_key"], None
        if other["status"] in WAITING:
            other["status"] = "dropped"
        for row in (keeper, other):
            changes[row["id"]] = {"source_key": row["source_key"], "status": row["status"]}
    return changes


def upgrade() -> None:
    bind = op.get_bind()
    query = sa.select(ITEMS).where(ITEMS.c.source_key.like("file:%"))
    rows = [dict(row._mapping) for row in bind.execute(query)]
    changes = merges(rows)
    # Free the keys first: source_key is unique.
    for item_id in changes:
        bind.execute(ITEMS.update().where(ITEMS.c.id == item_id).values(source_key=None))
    for item_id, values in changes.items():
        bind.execute(ITEMS.update().where(ITEMS.c.id == item_id).values(**values))


def downgrade() -> None:
    # The merged duplicates are not recreated: the keys kept are valid under either rule.
    pass
