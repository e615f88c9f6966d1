"""Unit status: SITREP reports, FLASH messages and their acknowledgements, and the memory of
which reporting lapses were already alerted (one alert per lapse, no alert storms).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("author_user_id", sa.BigInteger(), nullable=True),
        sa.Column("author_name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("place", sa.String(length=128), nullable=True),
        sa.Column("strength", sa.Integer(), nullable=True),
        sa.Column("needs", sa.Text(), nullable=False),
        sa.Column("remarks", sa.Text(), nullable=False),
        sa.Column("text_language", sa.String(length=8), nullable=True),
        sa.Column("translations", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reports") as batch_op:
        batch_op.create_index("ix_reports_unit_time", ["unit_id", "created_at"], unique=False)
        batch_op.create_index("ix_reports_operation", ["operation_id", "id"], unique=False)

    op.create_table(
        "flashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("sender_user_id", sa.BigInteger(), nullable=False),
        sa.Column("sender_name", sa.String(length=255), nullable=False),
        sa.Column("source_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("source_message_id", sa.BigInteger(), nullable=False),
        sa.Column("expected_units", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("remind_after", sa.DateTime(), nullable=False),
        sa.Column("escalate_after", sa.DateTime(), nullable=False),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
        sa.UniqueConstraint("source_chat_id", "source_message_id"),
    )
    with op.batch_alter_table("flashes") as batch_op:
        batch_op.create_index("ix_flashes_open", ["escalated_at", "remind_after"], unique=False)

    op.create_table(
        "flash_acks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flash_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("person_user_id", sa.BigInteger(), nullable=False),
        sa.Column("person_name", sa.String(length=255), nullable=False),
        sa.Column("acked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["flash_id"], ["flashes.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flash_id", "unit_id"),
    )

    op.create_table(
        "stale_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        # Which lapse: "r<report id>" after a report, "none" for a unit that never reported.
        sa.Column("lapse", sa.String(length=32), nullable=False),
        sa.Column("alerted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit_id", "lapse"),
    )


def downgrade() -> None:
    op.drop_table("stale_alerts")
    op.drop_table("flash_acks")
    op.drop_table("flashes")
    op.drop_table("reports")
