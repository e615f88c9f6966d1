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

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, exists, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from storage.audit import AuditChain, PendingEvent
from storage.models import AuditHead, Chat, Delivery


async def claim_deliveries(
    session: AsyncSession, *, worker_id: str, limit: int, now: datetime
) -> list[Delivery]:
    """Atomically claim up to `limit` due deliveries (oldest first, one per chat) for a worker:
    each becomes `sending`, stamped with the worker and `now`, its attempts counted."""
    return await session.run_sync(
        lambda sync: claim_deliveries_sync(sync, worker_id=worker_id, limit=limit, now=now)
    )


# The head of each chat's queue: its oldest pending row, unless the chat has a row in flight
# (`sending`: there is at most one, and it is older than every pending row). Only a head may
# go, and only when it is due (a head held back by `not_before`, e.g. after a 429, keeps its
# chat waiting). Per chat this is two index seeks on `ix_deliveries_pending` (state,
# target_chat_id, id), whatever the depth of the queues. The statements are built once: building
# ORM statements with aliases cost more than running them.
_pending = aliased(Delivery)
_in_flight = aliased(Delivery)
_HEADS = (
    select(
        select(func.min(_pending.id))
        .where(_pending.state == "pending", _pending.target_chat_id == Chat.id)
        .correlate(Chat)
        .scalar_subquery()
    )
    .select_from(Chat)
    .where(
        ~exists()
        .where(_in_flight.state == "sending", _in_flight.target_chat_id == Chat.id)
        .correlate(Chat)
    )
)
# The heads by id (a short list): which are due, oldest first.
_DUE = (
    select(Delivery.id)
    .where(
        Delivery.id.in_(bindparam("heads", expanding=True)),
        Delivery.state == "pending",
        or_(Delivery.not_before.is_(None), Delivery.not_before <= bindparam("now")),
    )
    .order_by(Delivery.id)
    .limit(bindparam("limit"))
)
# Table statements, not ORM-enabled ones (this runs for every batch of copies): the claimed
# rows come back as plain rows and are handed on as detached `Delivery` objects.
_TABLE = cast(Table, Delivery.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_TAKE = (
    update(_TABLE)
    .where(_TABLE.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        state="sending",
        claimed_by=bindparam("worker"),
        claimed_at=bindparam("now"),
        attempts=_TABLE.c.attempts + 1,
    )
)
_CLAIMED = (
    select(_TABLE).where(_TABLE.c.id.in_(bindparam("ids", expanding=True))).order_by(_TABLE.c.id)
)


# PostgreSQL: the same rules in one statement (one round trip instead of four; the claim runs
# in every transaction that records copies' outcomes). The heads and the due rows come from one
# snapshot; `FOR UPDATE SKIP LOCKED` passes over a head another claimer holds, and a head that
# another claimer took and committed since the snapshot fails the re-check of
# `state = 'pending'` under READ COMMITTED (the chat's next row is not a head in this snapshot,
# so it is not taken either).
_PG_HEADS = _HEADS.cte("heads")
_PG_DUE = (
    select(_TABLE.c.id)
    .where(
        _TABLE.c.id.in_(select(_PG_HEADS.c[0])),
        _TABLE.c.state == "pending",
        or_(_TABLE.c.not_before.is_(None), _TABLE.c.not_before <= bindparam("now")),
    )
    .order_by(_TABLE.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=_TABLE)
    .cte("due")
)
_PG_CLAIM = (
    update(_TABLE)
    .where(_TABLE.c.id == _PG_DUE.c.id)
    .values(
        state="sending",
        claimed_by=bindparam("worker"),
        claimed_at=bindparam("now"),
        attempts=_TABLE.c.attempts + 1,
    )
    .returning(*_TABLE.c)
)


def claim_deliveries_sync(
    session: Session, *, worker_id: str, limit: int, now: datetime
) -> list[Delivery]:
    """`claim_deliveries` in a synchronous transaction (`Database.write`)."""
    if limit <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_PG_CLAIM, {"worker": worker_id, "now": now, "limit": limit})
        return sorted((Delivery(**row._mapping) for row in rows), key=lambda d: d.id)
    heads = [h for h in session.execute(_HEADS).scalars() if h]
    if not heads:
        return []
    ids = list(session.execute(_DUE, {"heads": heads, "now": now, "limit": limit}).scalars())
    if not ids:
        return []
    session.execute(_TAKE, {"ids": ids, "worker": worker_id, "now": now})
    return [Delivery(**row._mapping) for row in session.execute(_CLAIMED, {"ids": ids})]


# PostgreSQL: the claim and the audit head's lock in one statement, for a transaction that
# appends audit events after claiming (recording copies' outcomes): the head row comes back
# with every claimed row (or alone, with NULLs, when nothing was due). One round trip less
# than the claim and a `SELECT ... FOR UPDATE` after it, and the lock is held no longer: from
# this statement (the transaction's last but the append) to the commit.
_PG_CLAIMED = _PG_CLAIM.cte("claimed")
_PG_HEAD = (
    select(_HEAD.c.seq.label("head_seq"), _HEAD.c.hash.label("head_hash"))
    .where(_HEAD.c.id == 1)
    .with_for_update()
    .subquery("head")
)
_PG_CLAIM_THEN_HEAD = select(_PG_HEAD, *_PG_CLAIMED.c).select_from(
    _PG_HEAD.outerjoin(_PG_CLAIMED, true())
)
_DELIVERY_FIELDS = tuple(c.name for c in _TABLE.c)


def claim_then_audit_sync(
    session: Session,
    chain: AuditChain,
    events: Sequence[PendingEvent],
    *,
    worker_id: str,
    limit: int,
    now: datetime,
) -> list[Delivery]:
    """Claim as `claim_deliveries_sync` does, then append `events` to the audit chain, in the
    caller's transaction (PostgreSQL: the claim and the head's lock in one statement)."""
    if not events or limit <= 0 or session.get_bind().dialect.name != "postgresql":
        claimed = claim_deliveries_sync(session, worker_id=worker_id, limit=limit, now=now)
        chain.append_many_sync(session, events)
        return claimed
    rows = session.execute(
        _PG_CLAIM_THEN_HEAD, {"worker": worker_id, "now": now, "limit": limit}
    ).all()
    head = (int(rows[0].head_seq), str(rows[0].head_hash))
    claimed = sorted(
        (
            Delivery(**{name: row._mapping[name] for name in _DELIVERY_FIELDS})
            for row in rows
            if row.id is not None
        ),
        key=lambda d: d.id,
    )
    chain.append_many_sync(session, events, head=head)
    return claimed
