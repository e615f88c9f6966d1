"""The notice outbox on a real database: what the bot writes on its own is posted in order
per chat, waits out a 429, is retried after a network error, fails once on a refusal, and
every outcome is on the row and in the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.delivery.notices import NoticeWorker
from bot.delivery.ratelimit import RateLimiter
from storage.audit import AuditChain
from storage.db import Database
from storage.models import AuditEvent, QueuedNotice
from storage.notices import NoticeRepo
from tests.support.fakes import Clock

GROUP, OTHER = -1001, -1002


@dataclass
class Posted:
    """A message the fake bot accepted."""

    method: str
    chat_id: int
    text: str
    target: int | None


class FakeBot:
    """Records what it posts; raises the scripted errors first, one per call."""

    def __init__(self, errors: Sequence[Exception] = ()) -> None:
        self.errors = list(errors)
        self.posted: list[Posted] = []

    def _next(self) -> None:
        if self.errors:
            raise self.errors.pop(0)

    async def send_message(self, chat_id: int, text: str, **kw: Any) -> Any:
        self._next()
        reply = kw.get("reply_parameters")
        self.posted.append(Posted("send", chat_id, text, reply.message_id if reply else None))
        return type("Sent", (), {"message_id": 900 + len(self.posted)})()

    async def edit_message_text(
        self, text: str, *, chat_id: int, message_id: int, **kw: Any
    ) -> Any:
        self._next()
        self.posted.append(Posted("edit", chat_id, text, message_id))
        return True


async def _queue(db: Database, clock: Clock, *notices: tuple[int, str, str]) -> None:
    async with db.transaction() as s:
        for chat_id, kind, text in notices:
            action = "edit" if kind == "flash.acked" else "send"
            await NoticeRepo(s).queue(
                telegram_chat_id=chat_id,
                kind=kind,
                text=text,
                now=clock(),
                ref="flash:1",
                action=action,
                target_message_id=55,
            )


async def _rows(db: Database) -> list[QueuedNotice]:
    async with db.transaction() as s:
        return list((await s.scalars(select(QueuedNotice).order_by(QueuedNotice.id))).all())


async def _events(db: Database) -> list[AuditEvent]:
    async with db.transaction() as s:
        return [
            e
            for e in (await s.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
            if e.event_type.startswith("notice.")
        ]


def _worker(db: Database, bot: FakeBot, clock: Clock) -> NoticeWorker:
    limiter = RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0)
    return NoticeWorker(db, AuditChain(), bot, limiter, clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_notices_are_posted_in_order_per_chat_and_audited(
    db: Database, clock: Clock
) -> None:
    bot = FakeBot()
    worker = _worker(db, bot, clock)
    await _queue(
        db,
        clock,
        (GROUP, "flash.reminder", "first"),
        (GROUP, "flash.acked", "second"),
        (OTHER, "flash.escalation", "other"),
    )
    assert await worker.deliver_due() == 2  # one per chat at a time
    assert await worker.deliver_due() == 1
    assert await worker.deliver_due() == 0
    assert [(p.method, p.chat_id, p.text, p.target) for p in bot.posted] == [
        ("send", GROUP, "first", 55),
        ("send", OTHER, "other", 55),
        ("edit", GROUP, "second", 55),
    ]
    assert [r.state for r in await _rows(db)] == ["sent", "sent", "sent"]
    events = await _events(db)
    assert [e.event_type for e in events] == ["notice.sent"] * 3


async def test_a_429_holds_the_chat_and_the_notice_is_posted_once_it_is_due(
    db: Database, clock: Clock
) -> None:
    bot = FakeBot([RetryAfter(timedelta(seconds=30))])
    worker = _worker(db, bot, clock)
    await _queue(db, clock, (GROUP, "flash.reminder", "one"), (GROUP, "flash.reminder", "two"))
    await worker.deliver_due()
    assert bot.posted == []
    assert await worker.deliver_due() == 0  # the chat waits, and keeps its order
    assert worker.limiter.held_for(GROUP) > 0
    clock.advance(seconds=31)
    await worker.deliver_due()
    await worker.deliver_due()
    assert [p.text for p in bot.posted] == ["one", "two"]
    rows = await _rows(db)
    assert [(r.state, r.attempts) for r in rows] == [("sent", 1), ("sent", 1)]


async def test_network_errors_retry_and_a_refusal_fails_once_with_its_reason(
    db: Database, clock: Clock
) -> None:
    bot = FakeBot([NetworkError("down"), Forbidden("bot was kicked")])
    worker = _worker(db, bot, clock)
    await _queue(db, clock, (GROUP, "flash.reminder", "again"))
    await worker.deliver_due()  # network error: back in the queue
    (row,) = await _rows(db)
    assert (row.state, row.last_error) == ("pending", "network: down")
    clock.advance(minutes=1)
    await worker.deliver_due()  # refused: failed for good
    (row,) = await _rows(db)
    assert row.state == "failed"
    assert "forbidden" in (row.last_error or "")
    clock.advance(minutes=5)
    assert await worker.deliver_due() == 0
    (event,) = await _events(db)
    assert (event.event_type, event.outcome) == ("notice.failed", "failed")


async def test_an_edit_telegram_finds_unchanged_counts_as_done(db: Database, clock: Clock) -> None:
    bot = FakeBot([BadRequest("Message is not modified")])
    worker = _worker(db, bot, clock)
    await _queue(db, clock, (GROUP, "flash.acked", "same"))
    await worker.deliver_due()
    assert [r.state for r in await _rows(db)] == ["sent"]
