"""Claiming outbox deliveries so several workers (or bot processes) share the work safely.

A claim moves `pending` rows to `sending` and stamps the worker's id, in the caller's
transaction. Two rules hold however many workers claim at once:

- No row is claimed twice. On PostgreSQL the candidate rows are locked with
  `SELECT ... FOR UPDATE SKIP LOCKED`, so a concurrent claimer skips rows another is taking
  instead of waiting for them; under READ COMMITTED a row that another claimer already moved
  to `sending` fails the re-check of `state = 'pending'` and is left out. On SQLite every write
  transaction starts with `BEGIN IMMEDIATE` (storage/db.py), so claims simply run one at a time.
- Per-chat order. Only the oldest unfinished row of a target chat is claimable: a row waits
  while any earlier row of the same chat is still `pending` (even one held back by
  `not_before`, e.g. after a 429) or `sending`. So each chat has at most one copy in flight and
  copies arrive in the order their rows were written. Rows that ended (`sent`, `failed`,
  `ambiguous`) do not hold later ones back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import Delivery

# States of rows that still have to reach their chat before anything after them may go.
_UNFINISHED = ("pending", "sending")


async def claim_deliveries(
    session: AsyncSession, *, worker_id: str, limit: int, now: datetime
) -> list[Delivery]:
    """Atomically claim up to `limit` due deliveries (oldest first, one per chat) for a worker:
    each becomes `sending`, stamped with the worker and `now`, its attempts counted."""
    return await session.run_sync(
        lambda sync: claim_deliveries_sync(sync, worker_id=worker_id, limit=limit, now=now)
    )


def claim_deliveries_sync(
    session: Session, *, worker_id: str, limit: int, now: datetime
) -> list[Delivery]:
    """`claim_deliveries` in a synchronous transaction (`Database.write`)."""
    if limit <= 0:
        return []
    # The head of each chat's queue: its oldest unfinished row. Only a head may go, and only
    # when it is pending and due (a head that is `sending`, or held back by `not_before`, keeps
    # its chat waiting). One pass over the unfinished rows (index `ix_deliveries_pending`),
    # whatever the queue depth, instead of a NOT EXISTS probe per pending row.
    heads = (
        select(func.min(Delivery.id).label("head"))
        .where(Delivery.state.in_(_UNFINISHED))
        .group_by(Delivery.target_chat_id)
        .subquery()
    )
    candidates = (
        select(Delivery.id)
        .join(heads, Delivery.id == heads.c.head)
        .where(
            Delivery.state == "pending",
            or_(Delivery.not_before.is_(None), Delivery.not_before <= now),
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Lock only the deliveries rows picked here, not the rows the NOT EXISTS looks at.
        candidates = candidates.with_for_update(skip_locked=True, of=Delivery)
    ids = list(session.execute(candidates).scalars())
    if not ids:
        return []
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(
            state="sending",
            claimed_by=worker_id,
            claimed_at=now,
            attempts=Delivery.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    # populate_existing: rows this session loaded earlier must show their new state.
    claimed = session.scalars(
        select(Delivery)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
        .execution_options(populate_existing=True)
    )
    return list(claimed)
