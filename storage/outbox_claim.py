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

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from storage.audit import (
    PG_APPEND_BINDS,
    PG_APPEND_CTE,
    PG_APPEND_CTE_IF,
    PG_MOVE_HEAD,
    AuditChain,
    PendingEvent,
)
from storage.audit import pg_append_params as _append_params
from storage.models import AuditHead, Chat, Copy, Delivery, UTCDateTime, naive_utc


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
_CHATS = cast(Table, Chat.__table__)
_CHAT_FIELDS = tuple(c.name for c in _CHATS.c)


class Claimed(NamedTuple):
    """Rows claimed while recording outcomes, and their target chats when read with them
    (PostgreSQL: the copies' rendering then needs no query of its own for them)."""

    deliveries: list[Delivery]
    chats: dict[int, Chat]


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
    head, claimed = _head_and_claimed(rows)
    chain.append_many_sync(session, events, head=head)
    return claimed


def _head_and_claimed(rows: Sequence[Any]) -> tuple[tuple[int, str], list[Delivery]]:
    return (int(rows[0].head_seq), str(rows[0].head_hash)), _claimed(rows)


def _claimed_with_chats(rows: Sequence[Any]) -> Claimed:
    """`_claimed`, with the target chats the rows carry (`target_*` columns)."""
    chats = {
        row.target_id: Chat(**{name: row._mapping[f"target_{name}"] for name in _CHAT_FIELDS})
        for row in rows
        if row.id is not None and row.target_id is not None
    }
    return Claimed(_claimed(rows), chats)


def _claimed(rows: Sequence[Any]) -> list[Delivery]:
    """The claimed rows among a statement's rows (none: a row of NULLs), oldest first."""
    return sorted(
        (
            Delivery(**{name: row._mapping[name] for name in _DELIVERY_FIELDS})
            for row in rows
            if row.id is not None
        ),
        key=lambda d: d.id,
    )


# Recording outcomes, claiming the next copies and appending the outcomes' events in one
# transaction (the outbox's hot path).
#
# PostgreSQL: two statements instead of five. The claim comes first and treats the rows being
# finished as already ended: in this worker's hands (`claimed_by`) they are about to become
# `sent` or `failed` in the same transaction, so their chats' next rows may go. A row another
# worker has taken since (a lease that ran out) still holds its chat. Then the outcomes (the
# new message-map rows and the rows' states) go in with the events and the head's move, as
# arrays in one statement whose text never changes.
#
# With the head this process last left (`AuditChain.head_hint`), all of it is one statement in
# autocommit (no BEGIN and COMMIT either: one round trip instead of four): the head moves only
# if it is still that one, and every write in the statement waits on that move, so a head
# another writer moved meanwhile leaves the statement writing nothing, and the transaction
# above runs instead. The statement's writes are one transaction, as any statement's are.
_CLAIM_AROUND_CTES = """
    heads AS (
        SELECT (
            SELECT min(p.id) FROM deliveries p
            WHERE p.state = 'pending' AND p.target_chat_id = c.id
        ) AS id
        FROM chats c
        WHERE NOT EXISTS (
            SELECT 1 FROM deliveries f
            WHERE f.state = 'sending' AND f.target_chat_id = c.id
                AND NOT (f.id = ANY(CAST(:finishing AS INTEGER[])) AND f.claimed_by = :worker)
        )
    ),
    due AS (
        SELECT d.id FROM deliveries d
        WHERE d.id IN (SELECT id FROM heads) AND d.state = 'pending'
            AND (d.not_before IS NULL OR d.not_before <= :now) AND {condition}
        ORDER BY d.id
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    ),
    claimed AS (
        UPDATE deliveries SET state = 'sending', claimed_by = :worker, claimed_at = :now,
            attempts = deliveries.attempts + 1
        FROM due WHERE deliveries.id = due.id
        RETURNING deliveries.*
    )"""
_OUTCOME_CTES = """
    posted AS (
        INSERT INTO copies
            (delivery_id, message_id, target_chat_id, telegram_chat_id, telegram_message_id,
             part, created_at)
        SELECT * FROM unnest(
            CAST(:c_delivery AS INTEGER[]), CAST(:c_message AS INTEGER[]),
            CAST(:c_chat AS INTEGER[]), CAST(:c_telegram_chat AS BIGINT[]),
            CAST(:c_telegram_message AS BIGINT[]), CAST(:c_part AS INTEGER[]),
            CAST(:c_created AS TIMESTAMP[])
        ) WHERE {condition}
    ),
    finished AS (
        UPDATE deliveries SET
            state = outcome.state, last_error = outcome.last_error, claimed_by = NULL,
            claimed_at = NULL, sent_at = outcome.sent_at,
            telegram_message_ids = CAST(outcome.ids AS JSON)
        FROM unnest(
            CAST(:d_id AS INTEGER[]), CAST(:d_state AS VARCHAR[]), CAST(:d_error AS VARCHAR[]),
            CAST(:d_sent AS TIMESTAMP[]), CAST(:d_ids AS TEXT[])
        ) AS outcome (id, state, last_error, sent_at, ids)
        WHERE deliveries.id = outcome.id AND {condition}
    )"""
# The claimed rows' columns, named in the order `.columns()` types them (a text statement's
# result columns are matched by position; `claimed.*` would follow the table's column order in
# the database, which migrations made differ from the model's).
_CLAIMED_COLUMNS = ", ".join(
    [f"claimed.{column.name}" for column in _TABLE.c]
    + [f"target.{column.name} AS target_{column.name}" for column in _CHATS.c]
)
_CLAIMED_TYPES = (
    *_TABLE.c,
    *(literal_column(f"target_{column.name}", column.type) for column in _CHATS.c),
)
_CLAIM_BINDS = (
    bindparam("finishing", type_=ARRAY(Integer)),
    bindparam("worker", type_=String),
    bindparam("now", type_=UTCDateTime()),
    bindparam("limit", type_=Integer),
)
_OUTCOME_BINDS = (
    bindparam("c_delivery", type_=ARRAY(Integer)),
    bindparam("c_message", type_=ARRAY(Integer)),
    bindparam("c_chat", type_=ARRAY(Integer)),
    bindparam("c_telegram_chat", type_=ARRAY(BigInteger)),
    bindparam("c_telegram_message", type_=ARRAY(BigInteger)),
    bindparam("c_part", type_=ARRAY(Integer)),
    bindparam("c_created", type_=ARRAY(DateTime())),
    bindparam("d_id", type_=ARRAY(Integer)),
    bindparam("d_state", type_=ARRAY(String)),
    bindparam("d_error", type_=ARRAY(String)),
    bindparam("d_sent", type_=ARRAY(DateTime())),
    bindparam("d_ids", type_=ARRAY(String)),
)
_PG_CLAIM_AROUND_THEN_HEAD = (
    text(
        f"""
        WITH {_CLAIM_AROUND_CTES.format(condition="true")}
        SELECT head.seq AS head_seq, head.hash AS head_hash, {_CLAIMED_COLUMNS}
        FROM (SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE) AS head
        LEFT JOIN claimed ON true
        LEFT JOIN chats AS target ON target.id = claimed.target_chat_id
        """  # noqa: S608 - constant fragments only; every value is a bound parameter
    )
    .bindparams(*_CLAIM_BINDS)
    .columns(
        literal_column("head_seq", BigInteger),
        literal_column("head_hash", String),
        *_CLAIMED_TYPES,
    )
)
_PG_FINISH_THEN_APPEND = text(
    f"""
    WITH {_OUTCOME_CTES.format(condition="true")},
    {PG_APPEND_CTE}
    {PG_MOVE_HEAD}
    """
).bindparams(*_OUTCOME_BINDS, *PG_APPEND_BINDS)
_MOVED = "EXISTS (SELECT 1 FROM moved)"
_PG_AT_HEAD = (
    text(
        f"""
        WITH moved AS (
            UPDATE audit_head SET seq = :head_seq, hash = :head_hash
            WHERE id = 1 AND seq = :expect_seq AND hash = :expect_hash
            RETURNING id
        ),
        {_CLAIM_AROUND_CTES.format(condition=_MOVED)},
        {_OUTCOME_CTES.format(condition=_MOVED)},
        {PG_APPEND_CTE_IF.format(condition=_MOVED)}
        SELECT {_CLAIMED_COLUMNS} FROM moved
        LEFT JOIN claimed ON true
        LEFT JOIN chats AS target ON target.id = claimed.target_chat_id
        """  # noqa: S608 - constant fragments only; every value is a bound parameter
    )
    .bindparams(
        *_CLAIM_BINDS,
        *_OUTCOME_BINDS,
        *PG_APPEND_BINDS,
        bindparam("expect_seq", type_=BigInteger),
        bindparam("expect_hash", type_=String),
    )
    .columns(*_CLAIMED_TYPES)
)
_COPIES = cast(Table, Copy.__table__)
# The same outcomes as plain statements (SQLite, and a row recorded alone): storage/outbox.py.
INSERT_COPIES = insert(_COPIES)
FINISH_DELIVERY = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("b_id"))
    .values(
        state=bindparam("state"),
        last_error=bindparam("last_error"),
        claimed_by=bindparam("claimed_by"),
        claimed_at=bindparam("claimed_at"),
        sent_at=bindparam("sent_at"),
        telegram_message_ids=bindparam("telegram_message_ids"),
    )
)


def finish_claim_audit_sync(
    session: Session,
    chain: AuditChain,
    posted: Sequence[dict[str, Any]],
    changes: Sequence[dict[str, Any]],
    events: Sequence[PendingEvent],
    *,
    worker_id: str,
    limit: int,
    now: datetime,
) -> Claimed:
    """Record finished rows' outcomes, claim as `claim_deliveries_sync` does, then append
    `events`, in the caller's transaction. `posted`: message-map rows to insert (Copy
    columns); `changes`: each finished row's outcome (keys b_id, state, last_error,
    claimed_by, claimed_at, sent_at, telegram_message_ids); the rows must be `sending` and
    claimed by `worker_id`, and end `sent` or `failed`."""
    if session.get_bind().dialect.name != "postgresql" or not events:
        if posted:
            session.execute(INSERT_COPIES, list(posted))
        if changes:
            session.execute(FINISH_DELIVERY, list(changes))
        claimed = claim_then_audit_sync(
            session, chain, events, worker_id=worker_id, limit=limit, now=now
        )
        return Claimed(claimed, {})
    claim = _claim_params(changes, worker_id=worker_id, limit=limit, now=now)
    rows = session.execute(_PG_CLAIM_AROUND_THEN_HEAD, claim).all()
    head = (int(rows[0].head_seq), str(rows[0].head_hash))
    linked = chain.linked(events, *head)
    chain.remember_head(session, linked[-1].seq, linked[-1].hash)
    session.execute(
        _PG_FINISH_THEN_APPEND, {**_outcome_params(posted, changes), **_append_params(linked)}
    )
    return _claimed_with_chats(rows)


def finish_claim_audit_at_head_sync(
    session: Session,
    chain: AuditChain,
    posted: Sequence[dict[str, Any]],
    changes: Sequence[dict[str, Any]],
    events: Sequence[PendingEvent],
    *,
    worker_id: str,
    limit: int,
    now: datetime,
) -> Claimed | None:
    """`finish_claim_audit_sync` as one PostgreSQL statement, for a session in autocommit,
    chained after the head this process last left: the claimed rows, or None (nothing
    written) when the head is not known or has moved since; then the caller runs
    `finish_claim_audit_sync` in a transaction."""
    if not events or session.get_bind().dialect.name != "postgresql":
        return None
    hint = chain.head_hint(session)
    if hint is None:
        return None
    linked = chain.linked(events, *hint)
    rows = session.execute(
        _PG_AT_HEAD,
        {
            **_claim_params(changes, worker_id=worker_id, limit=limit, now=now),
            **_outcome_params(posted, changes),
            **_append_params(linked),
            "expect_seq": hint[0],
            "expect_hash": hint[1],
        },
    ).all()
    if not rows:  # the head had moved: nothing was written
        chain.forget_head(session, hint)
        return None
    chain.remember_head(session, linked[-1].seq, linked[-1].hash)
    return _claimed_with_chats(rows)


def _claim_params(
    changes: Sequence[dict[str, Any]], *, worker_id: str, limit: int, now: datetime
) -> dict[str, Any]:
    return {
        "worker": worker_id,
        "now": now,
        "limit": max(0, limit),
        "finishing": [change["b_id"] for change in changes],
    }


def _outcome_params(
    posted: Sequence[dict[str, Any]], changes: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "c_delivery": [row["delivery_id"] for row in posted],
        "c_message": [row["message_id"] for row in posted],
        "c_chat": [row["target_chat_id"] for row in posted],
        "c_telegram_chat": [row["telegram_chat_id"] for row in posted],
        "c_telegram_message": [row["telegram_message_id"] for row in posted],
        "c_part": [row["part"] for row in posted],
        "c_created": [naive_utc(row["created_at"]) for row in posted],
        "d_id": [change["b_id"] for change in changes],
        "d_state": [change["state"] for change in changes],
        "d_error": [change["last_error"] for change in changes],
        "d_sent": [naive_utc(change["sent_at"]) for change in changes],
        "d_ids": [json.dumps(change["telegram_message_ids"]) for change in changes],
    }
