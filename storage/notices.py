"""The notice outbox and SITREP drafts: the queries behind them.

A notice is queued in the caller's transaction (the one that decides to send it and records
that it was decided), so "reminded" is never recorded without the reminder being durably on
its way. The worker claims the oldest due notice of each chat, one in flight per chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import QueuedNotice, ReportDraft


class NoticeRepo:
    """Queue, claim and finish notices."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queue(
        self,
        *,
        telegram_chat_id: int,
        kind: str,
        text: str,
        now: datetime,
        ref: str = "",
        operation_id: int | None = None,
        action: str = "send",
        target_message_id: int | None = None,
    ) -> QueuedNotice:
        """Queue one notice (posted once this transaction commits)."""
        row = QueuedNotice(
            operation_id=operation_id,
            telegram_chat_id=telegram_chat_id,
            kind=kind,
            ref=ref,
            action=action,
            text=text,
            target_message_id=target_message_id,
            state="pending",
            attempts=0,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def claim(
        self, *, now: datetime, limit: int, lease_before: datetime
    ) -> list[QueuedNotice]:
        """Mark the oldest due notice of up to `limit` chats as sending and return them; a
        chat with a notice in flight (claimed after `lease_before`) waits its turn."""
        await self.session.execute(
            update(QueuedNotice)
            .where(QueuedNotice.state == "sending", QueuedNotice.claimed_at < lease_before)
            .values(state="pending")
        )
        busy = set(
            (
                await self.session.scalars(
                    select(QueuedNotice.telegram_chat_id).where(QueuedNotice.state == "sending")
                )
            ).all()
        )
        rows = (
            await self.session.scalars(
                select(QueuedNotice)
                .where(
                    QueuedNotice.state == "pending",
                    or_(QueuedNotice.not_before.is_(None), QueuedNotice.not_before <= now),
                )
                .order_by(QueuedNotice.id)
                .limit(limit * 8)
            )
        ).all()
        held = await self._held_chats(now)
        claimed: list[QueuedNotice] = []
        for row in rows:
            if len(claimed) >= limit:
                break
            if row.telegram_chat_id in busy or _behind(row, held):
                continue
            busy.add(row.telegram_chat_id)
            claimed.append(row)
        for row in claimed:
            row.state = "sending"
            row.claimed_at = now
            row.attempts += 1
        await self.session.flush()
        return claimed

    async def _held_chats(self, now: datetime) -> dict[int, int]:
        """Per chat, the id of its oldest pending notice that is not due yet."""
        rows = (
            await self.session.execute(
                select(QueuedNotice.telegram_chat_id, QueuedNotice.id).where(
                    QueuedNotice.state == "pending", QueuedNotice.not_before > now
                )
            )
        ).all()
        held: dict[int, int] = {}
        for chat_id, notice_id in rows:
            held[chat_id] = min(notice_id, held.get(chat_id, notice_id))
        return held

    async def finish(
        self,
        notice_id: int,
        state: str,
        *,
        now: datetime,
        error: str | None = None,
        telegram_message_id: int | None = None,
    ) -> QueuedNotice | None:
        """Record a notice's outcome (`sent` or `failed`)."""
        row = await self.session.get(QueuedNotice, notice_id)
        if row is None:
            return None
        row.state = state
        row.last_error = error
        row.telegram_message_id = telegram_message_id
        row.sent_at = now if state == "sent" else None
        await self.session.flush()
        return row

    async def retry(
        self, notice_id: int, *, not_before: datetime, error: str, counts: bool = True
    ) -> QueuedNotice | None:
        """Put a notice back in the queue until `not_before` (a 429 does not count as an
        attempt)."""
        row = await self.session.get(QueuedNotice, notice_id)
        if row is None:
            return None
        row.state = "pending"
        row.not_before = not_before
        row.last_error = error
        if not counts:
            row.attempts = max(0, row.attempts - 1)
        await self.session.flush()
        return row

    async def of_kind(self, kind: str) -> Sequence[QueuedNotice]:
        """Every notice of one kind, oldest first (tests and the CLI)."""
        result = await self.session.scalars(
            select(QueuedNotice).where(QueuedNotice.kind == kind).order_by(QueuedNotice.id)
        )
        return result.all()


def _behind(row: QueuedNotice, held: dict[int, int]) -> bool:
    """Whether an older notice of the same chat waits (a 429): keep the chat's order."""
    first = held.get(row.telegram_chat_id)
    return first is not None and first < row.id


class DraftRepo:
    """SITREP wizards in progress, one per (chat, person)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put(
        self, telegram_chat_id: int, telegram_user_id: int, data: dict[str, Any], now: datetime
    ) -> None:
        """Store a draft's answers so far (replacing the person's earlier one in this chat)."""
        row = (
            await self.session.scalars(
                select(ReportDraft).where(
                    ReportDraft.telegram_chat_id == telegram_chat_id,
                    ReportDraft.telegram_user_id == telegram_user_id,
                )
            )
        ).one_or_none()
        if row is None:
            row = ReportDraft(telegram_chat_id=telegram_chat_id, telegram_user_id=telegram_user_id)
            self.session.add(row)
        row.data = data
        row.updated_at = now
        await self.session.flush()

    async def delete(self, telegram_chat_id: int, telegram_user_id: int) -> None:
        """Forget a draft (filed, cancelled or expired)."""
        await self.session.execute(
            delete(ReportDraft).where(
                ReportDraft.telegram_chat_id == telegram_chat_id,
                ReportDraft.telegram_user_id == telegram_user_id,
            )
        )

    async def delete_before(self, cutoff: datetime) -> None:
        """Forget every draft untouched since `cutoff`."""
        await self.session.execute(delete(ReportDraft).where(ReportDraft.updated_at < cutoff))

    async def all(self) -> Sequence[ReportDraft]:
        """Every stored draft."""
        return (await self.session.scalars(select(ReportDraft))).all()
