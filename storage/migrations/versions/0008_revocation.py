"""Revocation: when a person, a chat or an enrollment code was cut off, and when a unit was
retired, and by whom (a lost or captured phone must stop working at once, and auditors must
see who decided it). Nothing is deleted: revoked rows stay for the record.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# table -> name of its "cut off" time column (units are retired, the rest revoked)
_COLUMNS = {
    "people": "revoked",
    "chats": "revoked",
    "enrollment_codes": "revoked",
    "units": "retired",
}


def upgrade() -> None:
    for table, prefix in _COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column(f"{prefix}_at", sa.DateTime(), nullable=True))
            batch_op.add_column(sa.Column(f"{prefix}_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table, prefix in _COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column(f"{prefix}_by")
            batch_op.drop_column(f"{prefix}_at")
