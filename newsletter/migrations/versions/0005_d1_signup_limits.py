"""sign-up limits: the last confirmation's date, rate-limit hits

Revision ID: d1_signup_limits
Revises: e2_issue_subject
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import newsletter.models

revision: str = "d1_signup_limits"
down_revision: str | None = "e2_issue_subject"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("confirm_sent_at", newsletter.models.AwareDateTime(), nullable=True)
        )
    op.create_table(
        "rate_hit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", newsletter.models.AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rate_hit_bucket_key_at", "rate_hit", ["bucket", "key", "at"])


def downgrade() -> None:
    op.drop_index("ix_rate_hit_bucket_key_at", table_name="rate_hit")
    op.drop_table("rate_hit")
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_column("confirm_sent_at")
