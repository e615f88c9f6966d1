"""Retention: when a message's body (and a translation's text) was removed after its
retention period; the row and its metadata stay, so the log still shows who wrote when.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("translations") as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
    # The inbox is purged by age of processed rows.
    op.create_index("ix_inbox_processed", "inbox", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_processed", table_name="inbox")
    with op.batch_alter_table("translations") as batch_op:
        batch_op.drop_column("purged_at")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("purged_at")
