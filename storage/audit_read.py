"""Streaming reads of the audit log in chain order, in constant memory.

Rows come in keyset-paginated chunks (`WHERE seq > last ORDER BY seq LIMIT n`), each chunk in
its own short transaction: memory stays flat for millions of rows, no server-side cursor is
needed (asyncpg needs a transaction for one), and on SQLite the bot's writers are never held
back for the length of a whole walk. Times are read as the driver returns them and turned into
their canonical text here, so a time an attacker mangled shows up as a changed event instead of
crashing the walk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, func, select, type_coerce

from storage.audit import AuditRecord, format_ts
from storage.db import Database
from storage.models import AuditEvent

CHUNK = 5000


@dataclass(frozen=True)
class EventFilter:
    """Which events to read: all by default; times are aware, `since` inclusive, `until` not."""

    operation_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = -1
    upto_seq: int | None = None


def ts_text(value: Any) -> str:
    """The canonical text of a stored time, whatever the driver returned (raw text if bad)."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            # Fast path for SQLite's stored form `YYYY-MM-DD HH:MM:SS.ffffff` (naive UTC): the
            # same text format_ts gives. Any other text goes the slow way; a mangled time
            # simply fails to match its hash.
            return f"{value[:10]}T{value[11:]}+00:00"
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        value = parsed
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return format_ts(value)
    return str(value)


def _columns() -> list[Any]:
    c = AuditEvent.__table__.c
    # The time comes back untouched (text on SQLite, datetime on PostgreSQL): see ts_text.
    return [
        c.seq,
        type_coerce(c.ts, String).label("ts"),
        c.component,
        c.event_type,
        c.actor,
        c.outcome,
        c.operation_id,
        c.payload,
        c.prev_hash,
        c.hash,
    ]


async def iter_records(
    db: Database, filt: EventFilter | None = None, *, chunk: int = CHUNK
) -> AsyncIterator[AuditRecord]:
    """Yield events in seq order, chunk by chunk."""
    filt = filt or EventFilter()
    c = AuditEvent.__table__.c
    last = filt.after_seq
    while True:
        stmt = select(*_columns()).where(c.seq > last).order_by(c.seq).limit(chunk)
        if filt.operation_id is not None:
            stmt = stmt.where(c.operation_id == filt.operation_id)
        if filt.since is not None:
            stmt = stmt.where(AuditEvent.ts >= filt.since)
        if filt.until is not None:
            stmt = stmt.where(AuditEvent.ts < filt.until)
        if filt.upto_seq is not None:
            stmt = stmt.where(c.seq <= filt.upto_seq)
        async with db.transaction() as session:
            rows = (await session.execute(stmt)).all()
        for row in rows:
            yield AuditRecord(
                seq=row.seq,
                ts=ts_text(row.ts),
                component=row.component,
                event_type=row.event_type,
                actor=row.actor,
                outcome=row.outcome,
                operation_id=row.operation_id,
                payload=row.payload,
                prev_hash=row.prev_hash,
                hash=row.hash,
            )
        if len(rows) < chunk:
            return
        last = rows[-1].seq


async def first_seq_after(db: Database, seq: int) -> int | None:
    """The smallest stored seq above `seq`, if any."""
    c = AuditEvent.__table__.c
    async with db.transaction() as session:
        value = (await session.execute(select(func.min(c.seq)).where(c.seq > seq))).scalar()
    return int(value) if value is not None else None
