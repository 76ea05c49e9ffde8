"""An editor's subject for a week's issue (`jeudis issue subject W "…"`, the desk's preview).

Revision ID: e2_issue_subject
Revises: d2_accounts
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op
from newsletter.models import AwareDateTime

revision: str = "e2_issue_subject"
down_revision: str | None = "d2_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "issue_subject",
        sa.Column("week_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("week_key"),
    )


def downgrade() -> None:
    op.drop_table("issue_subject")
