"""Repositories of the abuse limits: code-attempt counters, refusal counts, refused chats.

Rows are read `FOR UPDATE` (PostgreSQL; SQLite's write lock covers the transaction) and
created with an insert that ignores a conflict, so two updates racing for the same person or
chat count both attempts instead of failing one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AttemptCounter, RefusalCount, RefusedChat


async def _insert_ignoring_conflict(s: AsyncSession, model: Any, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row is new."""
    dialect = s.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await s.execute(builder(model).values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


class AttemptRepo:
    """Failed enrollment-code attempts per person or chat."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, scope: str, subject: int) -> AttemptCounter | None:
        """The counter of a person or chat, locked for update."""
        result = await self.session.execute(
            select(AttemptCounter)
            .where(AttemptCounter.scope == scope, AttemptCounter.subject == subject)
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def get_or_add(
        self, scope: str, subject: int, now: datetime
    ) -> tuple[AttemptCounter, bool]:
        """The counter, created empty (window starting now) if there is none."""
        row = await self.get(scope, subject)
        if row is not None:
            return row, False
        created = await _insert_ignoring_conflict(
            self.session,
            AttemptCounter,
            {
                "scope": scope,
                "subject": subject,
                "window_start": now,
                "failures": 0,
                "lockouts": 0,
            },
        )
        row = await self.get(scope, subject)
        assert row is not None
        return row, created

    async def drop_quiet(self, before: datetime) -> None:
        """Delete counters whose window and lockout both ended before `before`."""
        await self.session.execute(
            delete(AttemptCounter).where(
                AttemptCounter.window_start < before,
                or_(AttemptCounter.locked_until.is_(None), AttemptCounter.locked_until < before),
            )
        )

    async def delete(self, scope: str, subject: int) -> None:
        """Forget a person's or chat's failures."""
        await self.session.execute(
            delete(AttemptCounter).where(
                AttemptCounter.scope == scope, AttemptCounter.subject == subject
            )
        )


class RefusalRepo:
    """Refused attempts counted between aggregated audit events; chats told once."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, actor: str, chat_id: int, reason: str, command: str
    ) -> RefusalCount | None:
        """The count of one actor, chat, reason and command, locked for update."""
        result = await self.session.execute(
            select(RefusalCount)
            .where(
                RefusalCount.actor == actor,
                RefusalCount.chat_id == chat_id,
                RefusalCount.reason == reason,
                RefusalCount.command == command,
            )
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def get_or_add(
        self, actor: str, chat_id: int, reason: str, command: str, now: datetime
    ) -> tuple[RefusalCount, bool]:
        """The count, created (window starting now, nothing pending) if there is none."""
        row = await self.get(actor, chat_id, reason, command)
        if row is not None:
            return row, False
        created = await _insert_ignoring_conflict(
            self.session,
            RefusalCount,
            {
                "actor": actor,
                "chat_id": chat_id,
                "reason": reason,
                "command": command,
                "window_start": now,
                "pending": 0,
            },
        )
        row = await self.get(actor, chat_id, reason, command)
        assert row is not None
        return row, created

    async def ended(self, before: datetime) -> Sequence[RefusalCount]:
        """Counts whose window started before `before` and still hold attempts."""
        result = await self.session.execute(
            select(RefusalCount)
            .where(RefusalCount.window_start <= before, RefusalCount.pending > 0)
            .order_by(RefusalCount.id)
            .with_for_update()
        )
        return result.scalars().all()

    async def drop_idle(self, before: datetime) -> None:
        """Delete counts whose window is over with nothing left to write."""
        await self.session.execute(
            delete(RefusalCount).where(
                RefusalCount.window_start <= before, RefusalCount.pending == 0
            )
        )

    async def tell(self, telegram_chat_id: int, now: datetime) -> bool:
        """Remember that a chat was told it is not enrolled; True the first time."""
        return await _insert_ignoring_conflict(
            self.session, RefusedChat, {"telegram_chat_id": telegram_chat_id, "told_at": now}
        )

    async def forget(self, telegram_chat_id: int) -> None:
        """Forget a chat (it enrolled: should it leave again, it is told again)."""
        await self.session.execute(
            delete(RefusedChat).where(RefusedChat.telegram_chat_id == telegram_chat_id)
        )
