"""the instance secret moves into the database

Revision ID: a1_instance_secret
Revises: b_ledger
Create Date: 2026-11-27 11:40:00

The key that signs unsubscribe and confirmation tokens, desk sessions and Message-IDs used to
be `$JEUDIS_HOME/secret.key`, one per machine. It now lives in one row, so every machine on
the database signs alike. An instance upgraded in the folder that holds its `secret.key`
keeps that value (links already sent keep working); any other database gets a fresh one.
"""

import secrets
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
import sqlmodel
from alembic import context, op

from newsletter.errors import InputError

revision: str = "a1_instance_secret"
down_revision: str | None = "b_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _legacy_or_new_secret() -> str:
    home = context.config.attributes.get("home")
    path = Path(home) / "secret.key" if home is not None else None
    if path is None or not path.exists():
        return secrets.token_hex(32)
    value = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        bytes.fromhex(value)
    except ValueError:
        raise InputError(f"{path}: not a hexadecimal secret; fix or remove it") from None
    return value


def upgrade() -> None:
    table = op.create_table(
        "instance_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "value": _legacy_or_new_secret()}])


def downgrade() -> None:
    op.drop_table("instance_secret")
