"""Messages the bot sends on its own (alerts, reminders, escalations), queued in the notice
outbox inside the caller's transaction; bot/delivery/notices.py posts them once it commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.notices import NoticeRepo


@dataclass(frozen=True)
class Notice:
    """A message the bot sends on its own (alerts, reminders) to one chat."""

    chat_id: int  # Telegram chat id (a group, or a person's private chat)
    text: str  # Telegram HTML
    reply_to: int | None = None
    kind: str = "notice"  # flash.reminder | flash.escalation | status.stale_alert | ...


async def queue_notices(
    repo: NoticeRepo, notices: Sequence[Notice], *, now: datetime, ref: str, operation_id: int
) -> None:
    """Queue notices in the notice outbox, in the caller's transaction (the worker posts
    them once it commits)."""
    for notice in notices:
        await repo.queue(
            telegram_chat_id=notice.chat_id,
            kind=notice.kind,
            text=notice.text,
            target_message_id=notice.reply_to,
            ref=ref,
            operation_id=operation_id,
            now=now,
        )
