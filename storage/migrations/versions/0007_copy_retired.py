"""A copy part an edit made surplus is kept in the message map with how it was retired:
`deleted` (removed from the chat) or `marked` (could not be deleted: edited to a "replaced"
note). Live parts have none; replies and later edits use only those.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("copies") as batch_op:
        batch_op.add_column(sa.Column("retired", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("copies") as batch_op:
        batch_op.drop_column("retired")
