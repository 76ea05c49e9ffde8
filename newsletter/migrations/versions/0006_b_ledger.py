"""the outbox as a ledger: issue_message, delivery claims and backoff

Revision ID: b_ledger
Revises: d1_signup_limits

Rows queued before this revision keep their `path` (a .eml file under JEUDIS_HOME): the
sender still sends them from that file, stamping a fresh Date. `failed` rows whose error is
an SMTP answer become `bounced`; the others (a missing or empty file) stay `failed`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import newsletter.models

revision: str = "b_ledger"
down_revision: str | None = "d1_signup_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "issue_message",
        sa.Column("issue_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=False),
        sa.Column("send_at", newsletter.models.AwareDateTime(), nullable=False),
        sa.Column("created_at", newsletter.models.AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"]),
        sa.PrimaryKeyConstraint("issue_id"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("path", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        batch_op.add_column(
            sa.Column("next_attempt_at", newsletter.models.AwareDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lease_until", newsletter.models.AwareDateTime(), nullable=True)
        )
        batch_op.create_index("ix_delivery_due", ["status", "next_attempt_at"], unique=False)
    op.execute(
        "UPDATE delivery SET status = 'bounced' WHERE status = 'failed' "
        "AND substr(last_error, 1, 1) BETWEEN '4' AND '5'"
    )


def downgrade() -> None:
    op.execute("UPDATE delivery SET status = 'failed' WHERE status IN ('bounced', 'expired')")
    op.execute("UPDATE delivery SET status = 'queued' WHERE status = 'deferred'")
    op.execute("DELETE FROM delivery WHERE path IS NULL AND status = 'queued'")
    op.execute("UPDATE delivery SET path = '' WHERE path IS NULL")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_due")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("next_attempt_at")
        batch_op.alter_column("path", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch_op.drop_column("content")
    op.drop_table("issue_message")
