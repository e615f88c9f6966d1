"""The durable outbox's rows as the worker needs them: claims (storage/outbox_claim.py),
releases, recorded outcomes and retired parts.

Prebuilt table statements (not ORM queries or the unit of work's identity map): these run for
every copy of a burst, and building them cost more than running them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Integer, Table, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, Copy, Delivery
from storage.outbox_claim import FINISH_DELIVERY, INSERT_COPIES, claim_deliveries_sync


class FinishingRow(NamedTuple):
    """What recording an outcome reads of a delivery row."""

    id: int
    message_id: int
    revision: int
    action: str
    target_chat_id: int
    target_language: str
    attempts: int
    ambiguous: bool


class TargetChat(NamedTuple):
    """A delivery's target chat as its outcome's audit event names it."""

    id: int
    operation_id: int
    telegram_chat_id: int


class OutboxRepo:
    """Deliveries and the message map, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, *, worker_id: str, limit: int, now: datetime) -> list[Delivery]:
        """Claim up to `limit` due rows, the oldest unfinished one of each chat (see
        storage/outbox_claim.py)."""
        return cast(
            list[Delivery],
            await self.session.run_sync(
                lambda s: claim_deliveries_sync(s, worker_id=worker_id, limit=limit, now=now)
            ),
        )

    async def release(self, ids: Sequence[int]) -> None:
        """Put claimed rows that were never started back in the queue as they were (not
        ambiguous: nothing was sent; the claim's attempt is not counted)."""
        await self.session.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id.in_(list(ids)), _DELIVERIES.c.state == "sending")
            .values(
                state="pending",
                claimed_by=None,
                claimed_at=None,
                attempts=_DELIVERIES.c.attempts - 1,
            )
        )

    async def finishing(
        self, ids: Sequence[int]
    ) -> tuple[dict[int, FinishingRow], dict[int, dict[int, int]], dict[int, TargetChat]]:
        """Rows about to be finished, their parts already posted (delivery -> part -> Telegram
        id) and their target chats, read together in one statement."""
        rows: dict[int, FinishingRow] = {}
        parts: dict[int, dict[int, int]] = {i: {} for i in ids}
        chats: dict[int, TargetChat] = {}
        statement = _FINISHING_PG if _postgres(self.session) else _FINISHING
        for row in await self.session.execute(statement, {"ids": list(ids)}):
            delivery = FinishingRow(*row[:8])
            rows[delivery.id] = delivery
            if row.operation_id is not None:
                chats[delivery.target_chat_id] = TargetChat(
                    delivery.target_chat_id, row.operation_id, row.telegram_chat_id
                )
            if row.part is not None:
                parts[delivery.id][row.part] = row.telegram_message_id
        return rows, parts, chats

    async def finish(
        self, posted: Sequence[dict[str, Any]], changes: Sequence[dict[str, Any]]
    ) -> None:
        """Insert the posted parts into the message map and write the rows' outcomes (keys of
        a change: b_id, state, last_error, claimed_by, claimed_at, sent_at,
        telegram_message_ids), each one multi-row statement."""
        if posted:
            await self.session.execute(INSERT_COPIES, list(posted))
        if changes:
            await self.session.execute(FINISH_DELIVERY, list(changes))  # executemany by id

    async def retire_part(
        self, telegram_chat_id: int, telegram_message_id: int, how: str, chat_row: int
    ) -> int | None:
        """Mark a posted part retired (`deleted` or `marked`) in the message map; the target
        chat's operation (for the audit event)."""
        await self.session.execute(
            update(_COPIES)
            .where(
                _COPIES.c.telegram_chat_id == telegram_chat_id,
                _COPIES.c.telegram_message_id == telegram_message_id,
            )
            .values(retired=how)
        )
        result = await self.session.execute(
            select(_CHATS.c.operation_id).where(_CHATS.c.id == chat_row)
        )
        return cast(int | None, result.scalar_one_or_none())


_ID_ARRAY = ARRAY(Integer)
_COPIES = cast(Table, Copy.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)
_CHATS = cast(Table, Chat.__table__)
# A row per posted part (or one for a row with none), with the row's target chat.
_FINISHING_COLUMNS = select(
    _DELIVERIES.c.id,
    _DELIVERIES.c.message_id,
    _DELIVERIES.c.revision,
    _DELIVERIES.c.action,
    _DELIVERIES.c.target_chat_id,
    _DELIVERIES.c.target_language,
    _DELIVERIES.c.attempts,
    _DELIVERIES.c.ambiguous,
    _CHATS.c.operation_id,
    _CHATS.c.telegram_chat_id,
    _COPIES.c.part,
    _COPIES.c.telegram_message_id,
).select_from(
    _DELIVERIES.outerjoin(_CHATS, _CHATS.c.id == _DELIVERIES.c.target_chat_id).outerjoin(
        _COPIES, _COPIES.c.delivery_id == _DELIVERIES.c.id
    )
)
_FINISHING = _FINISHING_COLUMNS.where(_DELIVERIES.c.id.in_(bindparam("ids", expanding=True)))
# PostgreSQL: an array parameter, so the statement's text (and its prepared statement) is the
# same however many rows finish together.
_FINISHING_PG = _FINISHING_COLUMNS.where(
    _DELIVERIES.c.id == any_(bindparam("ids", type_=_ID_ARRAY))
)


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"
