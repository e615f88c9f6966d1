"""Abuse limits: failed code attempts and lockouts per person and per chat, refused attempts
counted between their aggregated audit events, and the chats already told they are not
enrolled (all kept across restarts).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempt_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.BigInteger(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "subject"),
    )
    op.create_table(
        "refusal_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("command", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=True),
        sa.Column("last_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("actor", "chat_id", "reason", "command"),
    )
    with op.batch_alter_table("refusal_counts") as batch_op:
        batch_op.create_index("ix_refusal_counts_window", ["window_start"], unique=False)
    op.create_table(
        "refused_chats",
        sa.Column("telegram_chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("told_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("telegram_chat_id"),
    )


def downgrade() -> None:
    op.drop_table("refused_chats")
    with op.batch_alter_table("refusal_counts") as batch_op:
        batch_op.drop_index("ix_refusal_counts_window")
    op.drop_table("refusal_counts")
    op.drop_table("attempt_counters")
