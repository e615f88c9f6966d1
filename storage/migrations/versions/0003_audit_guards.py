"""Audit guards: the database itself refuses UPDATE and DELETE on `audit_events`.

- `audit_events`: every UPDATE is refused; a DELETE is refused unless the row's seq is at or
  below `audit_purge_gate.cut_seq`. The gate is 0 except inside a retention purge
  (`storage.audit_retention.purge_before`), which in one transaction locks the chain head, opens
  the gate to the cut, deletes the rows at or below it, closes the gate and appends an
  `audit.purge` event carrying the seq and hash of the last purged event (the verifier's anchor).
  PostgreSQL also refuses TRUNCATE.
- `audit_head`: may only move forward (a higher seq), and its row is never deleted, so the head
  cannot be rewound to hide a truncated tail.

These guards stop mistakes and casual edits; someone who can drop triggers can also rewrite
rows, which is what the hash chain, the HMAC key and the external head anchors are for.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SQLITE_UP = [
    """
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only');
    END
    """,
    """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW
    WHEN OLD.seq > COALESCE((SELECT cut_seq FROM audit_purge_gate WHERE id = 1), 0)
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only');
    END
    """,
    """
    CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
    FOR EACH ROW
    WHEN NEW.seq <= OLD.seq OR NEW.id != OLD.id
    BEGIN
        SELECT RAISE(ABORT, 'audit_head only moves forward');
    END
    """,
    """
    CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    BEGIN
        SELECT RAISE(ABORT, 'audit_head only moves forward');
    END
    """,
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_head_no_delete",
    "DROP TRIGGER IF EXISTS audit_head_forward_only",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_events_no_update",
]

_PG_UP = [
    """
    CREATE FUNCTION daraja_audit_events_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF OLD.seq <= COALESCE((SELECT cut_seq FROM audit_purge_gate WHERE id = 1), 0) THEN
                RETURN OLD;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit_events is append-only'
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION daraja_audit_events_guard()
    """,
    """
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION daraja_audit_events_guard()
    """,
    """
    CREATE FUNCTION daraja_audit_head_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF NEW.seq > OLD.seq AND NEW.id = OLD.id THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit_head only moves forward'
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION daraja_audit_head_guard()
    """,
    """
    CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION daraja_audit_head_guard()
    """,
]
_PG_DOWN = [
    "DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head",
    "DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_head",
    "DROP FUNCTION IF EXISTS daraja_audit_head_guard()",
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP FUNCTION IF EXISTS daraja_audit_events_guard()",
]


def upgrade() -> None:
    op.create_table(
        "audit_purge_gate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cut_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        sa.table(
            "audit_purge_gate", sa.column("id", sa.Integer), sa.column("cut_seq", sa.BigInteger)
        ),
        [{"id": 1, "cut_seq": 0}],
    )
    statements = _PG_UP if op.get_bind().dialect.name == "postgresql" else _SQLITE_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = _PG_DOWN if op.get_bind().dialect.name == "postgresql" else _SQLITE_DOWN
    for statement in statements:
        op.execute(statement)
    op.drop_table("audit_purge_gate")
