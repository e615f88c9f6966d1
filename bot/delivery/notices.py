"""The notice worker: posts what the bot writes on its own, from the durable notice outbox.

FLASH reminders and escalations, staleness alerts and the "acknowledged" edit of a FLASH copy
are queued (`storage.notices`) in the transaction that decides them; this worker posts them in
order per chat, one in flight per chat, through the same rate limiter as every request.
- 429: the chat is held for `retry_after` and the notice waits (not counted as an attempt).
- network error or timeout: retried with backoff (a timeout may repeat a notice: a reminder
  twice is better than none).
- a permanent refusal (bot removed, chat gone, bad request): failed.
Every outcome is recorded on the row and in the audit log (`notice.sent` / `notice.failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from telegram import ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.delivery.ratelimit import RateLimiter, retry_seconds
from storage.audit import AuditChain
from storage.db import Database
from storage.models import QueuedNotice, utcnow
from storage.uow import Storage

log = logging.getLogger(__name__)

NO_RETRY = {"retries": 0}
MAX_ATTEMPTS = 8


class NoticeWorker:
    """Claims due notices and posts them, one per chat at a time."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        bot: Any,
        limiter: RateLimiter,
        *,
        concurrency: int = 8,
        lease: timedelta = timedelta(seconds=90),
        poll_interval: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.audit = audit
        self.storage = Storage(db, audit)
        self.bot = bot
        self.limiter = limiter
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A notice was queued: look for work now."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            self._wake.clear()
            try:
                busy = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notice delivery failed; retrying shortly")
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def deliver_due(self) -> int:
        """Post one due notice per chat (up to `concurrency`); returns how many were tried."""
        now = self.clock()
        async with self.storage() as uow:
            rows = await uow.notices.claim(
                now=now, limit=self.concurrency, lease_before=now - self.lease
            )
        if rows:
            await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: QueuedNotice) -> None:
        try:
            posted = await self._post(row)
        except RetryAfter as exc:
            delay = retry_seconds(exc.retry_after)
            self.limiter.hold(row.telegram_chat_id, delay)
            await self._retry(row, delay, f"429 retry after {delay:.0f}s", counts=False)
        except Forbidden as exc:
            await self._finish(row, "failed", error=f"forbidden: {exc.message}"[:255])
        except BadRequest as exc:
            if row.action == "edit" and "not modified" in exc.message.lower():
                await self._finish(row, "sent")
            else:
                await self._finish(row, "failed", error=f"bad request: {exc.message}"[:255])
        except NetworkError as exc:
            await self._retry(row, _backoff(row.attempts), f"network: {exc.message}"[:255])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("notice %s failed unexpectedly", row.id)
            await self._retry(row, _backoff(row.attempts), type(exc).__name__)
        else:
            await self._finish(row, "sent", telegram_message_id=posted)

    async def _post(self, row: QueuedNotice) -> int | None:
        if row.action == "edit":
            assert row.target_message_id is not None
            # No reply_markup: the edit removes the copy's button.
            await self.bot.edit_message_text(
                row.text,
                chat_id=row.telegram_chat_id,
                message_id=row.target_message_id,
                parse_mode=ParseMode.HTML,
                rate_limit_args=NO_RETRY,
            )
            return row.target_message_id
        reply = (
            ReplyParameters(message_id=row.target_message_id, allow_sending_without_reply=True)
            if row.target_message_id
            else None
        )
        sent = await self.bot.send_message(
            row.telegram_chat_id,
            row.text,
            parse_mode=ParseMode.HTML,
            reply_parameters=reply,
            rate_limit_args=NO_RETRY,
        )
        return int(sent.message_id)

    async def _retry(
        self, row: QueuedNotice, delay: float, error: str, *, counts: bool = True
    ) -> None:
        if counts and row.attempts >= MAX_ATTEMPTS:
            await self._finish(row, "failed", error=error)
            return
        async with self.storage() as uow:
            await uow.notices.retry(
                row.id,
                not_before=self.clock() + timedelta(seconds=delay),
                error=error,
                counts=counts,
            )
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self.wake)

    async def _finish(
        self,
        row: QueuedNotice,
        state: str,
        *,
        error: str | None = None,
        telegram_message_id: int | None = None,
    ) -> None:
        now = self.clock()
        if state == "failed":
            log.warning("notice %s to chat %s failed: %s", row.id, row.telegram_chat_id, error)
        async with self.storage() as uow:
            await uow.notices.finish(
                row.id, state, now=now, error=error, telegram_message_id=telegram_message_id
            )
            await uow.audit(
                component="notices",
                event_type=f"notice.{state}",
                actor="daraja",
                outcome="ok" if state == "sent" else "failed",
                operation_id=row.operation_id,
                ts=now,
                payload={
                    "notice_id": row.id,
                    "kind": row.kind,
                    "ref": row.ref,
                    "chat_id": row.telegram_chat_id,
                    "action": row.action,
                    "attempts": row.attempts,
                    "telegram_message_id": telegram_message_id,
                    "error": error,
                },
            )


def _backoff(attempts: int) -> float:
    """Seconds before the next try: 2, 4, 8… up to a minute."""
    return float(min(60, 2 ** max(1, attempts)))
