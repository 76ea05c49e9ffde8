"""delivery: drop two indexes that others cover

Revision ID: delivery_indexes
Revises: e1_content_identity
Create Date: 2026-11-27 14:30:00

`ix_delivery_issue_id` is the first column of the unique key (issue_id, subscriber_id,
purpose) and `ix_delivery_status` the first column of `ix_delivery_due` (status,
next_attempt_at): every query they served uses the wider index as well, and each one was
written for every row a build adds (100,000 rows for a list of 100,000).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "delivery_indexes"
down_revision: str | None = "e1_content_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_status")
        batch_op.drop_index("ix_delivery_issue_id")


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_issue_id", ["issue_id"], unique=False)
        batch_op.create_index("ix_delivery_status", ["status"], unique=False)
