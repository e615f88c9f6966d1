"""Retention: the one audited path that removes old audit events.

Default retention is forever; nothing here runs unless an operator asks. A purge removes a
prefix of the chain (every event up to the cut), never a hole: the cut is the last event before
the first event at or after `before`, so an event with an out-of-order time keeps everything
after it. In one transaction the purge locks the head (appends wait), opens the guard trigger's
gate to the cut (migration 0002), deletes, closes the gate, and appends an `audit.purge` event
with the seq and hash of the last purged event. The verifier starts the remaining chain from
that anchor; with an HMAC key nobody without the key can forge such an anchor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import PURGE_EVENT, AuditChain, format_ts
from storage.db import Database
from storage.models import AuditEvent, AuditHead, AuditPurgeGate


@dataclass(frozen=True)
class PurgePlan:
    """What a purge removes: events `first_seq..through_seq` (none when `count` is 0)."""

    before: datetime
    first_seq: int | None
    through_seq: int
    through_hash: str | None
    count: int


@dataclass(frozen=True)
class PurgeResult:
    """A purge that ran (or the plan of a dry run, `event_seq` None)."""

    plan: PurgePlan
    event_seq: int | None


async def _plan(session: AsyncSession, before: datetime) -> PurgePlan:
    first = (await session.execute(select(func.min(AuditEvent.seq)))).scalar()
    if first is None:
        return PurgePlan(before, None, 0, None, 0)
    keep_from = (
        await session.execute(select(func.min(AuditEvent.seq)).where(AuditEvent.ts >= before))
    ).scalar()
    if keep_from is None:
        through = (await session.execute(select(func.max(AuditEvent.seq)))).scalar_one()
    else:
        through = int(keep_from) - 1
    if through < first:
        return PurgePlan(before, None, through, None, 0)
    through_hash = (
        await session.execute(select(AuditEvent.hash).where(AuditEvent.seq == through))
    ).scalar()
    count = (
        await session.execute(select(func.count()).where(AuditEvent.seq <= through))
    ).scalar_one()
    return PurgePlan(before, int(first), int(through), through_hash, int(count))


async def purge_before(
    db: Database,
    chain: AuditChain,
    before: datetime,
    *,
    actor: str,
    dry_run: bool = False,
    retention_days: int | None = None,
) -> PurgeResult:
    """Delete the events older than `before` (a chain prefix) and record an `audit.purge`."""
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    async with db.transaction() as session:
        # Lock the head first: appends wait, so the cut and the purge event see one chain.
        await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        plan = await _plan(session, before)
        if dry_run or plan.count == 0:
            return PurgeResult(plan, None)
        if plan.through_hash is None:
            raise ValueError(f"event {plan.through_seq} is absent: verify the chain first")
        gate = update(AuditPurgeGate).where(AuditPurgeGate.id == 1)
        await session.execute(gate.values(cut_seq=plan.through_seq))
        await session.execute(
            delete(AuditEvent)
            .where(AuditEvent.seq <= plan.through_seq)
            .execution_options(synchronize_session=False)
        )
        await session.execute(gate.values(cut_seq=0))
        event = await chain.append(
            session,
            component="audit",
            event_type=PURGE_EVENT,
            actor=actor,
            payload={
                "before": format_ts(before),
                "first_seq": plan.first_seq,
                "through_seq": plan.through_seq,
                "through_hash": plan.through_hash,
                "purged": plan.count,
                "retention_days": retention_days,
            },
        )
        return PurgeResult(plan, event.seq)
