"""The notice outbox and SITREP wizards in progress.

`notices`: every message the bot writes on its own (FLASH reminders and escalations, staleness
alerts, the "acknowledged" edit of a FLASH copy) is a row here, queued in the transaction that
decides it and posted by the outbox worker, so it survives a restart, waits out a 429 and has
its outcome recorded. `report_drafts`: a `/report` wizard's answers so far, one per person and
chat, so a restart in the middle of one loses nothing.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=True),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=False),
        # flash.reminder | flash.escalation | flash.acked | status.stale_alert
        sa.Column("kind", sa.String(length=32), nullable=False),
        # What the notice is about, for the audit trail (e.g. "flash:12").
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),  # send | edit
        sa.Column("text", sa.Text(), nullable=False),
        # send: the message to reply to; edit: the message to edit.
        sa.Column("target_message_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "state", sa.String(length=12), nullable=False
        ),  # pending | sending | sent | failed
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notices") as batch_op:
        batch_op.create_index(
            "ix_notices_pending", ["state", "telegram_chat_id", "id"], unique=False
        )

    op.create_table(
        "report_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("telegram_chat_id", "telegram_user_id"),
    )


def downgrade() -> None:
    op.drop_table("report_drafts")
    with op.batch_alter_table("notices") as batch_op:
        batch_op.drop_index("ix_notices_pending")
    op.drop_table("notices")
