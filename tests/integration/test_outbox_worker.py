"""The outbox worker on a real database with a scripted fake Bot API: what happens to copies
when Telegram throttles, times out, is unreachable or refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.delivery.outbox import OutboxWorker
from bot.delivery.ratelimit import RateLimiter
from bot.i18n import load_i18n
from bot.services.copies import CopyBuilder
from storage.audit import AuditChain
from storage.db import Database
from storage.models import AuditEvent, Copy, Delivery, TranslationRow
from tests.support.db_seed import seed_operation
from tests.support.fakes import Clock


class ScriptedBot:
    """Answers sendMessage from a script of outcomes (an exception, or None for success). The
    outbox posts text through `do_api_request("sendMessage", ...)`, which returns raw JSON."""

    def __init__(self, script: Iterator[Exception | None]) -> None:
        self.script = script
        self.sent: list[tuple[int, str]] = []
        self.next_id = 100

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        outcome = next(self.script, None)
        if outcome is not None:
            raise outcome
        self.next_id += 1
        self.sent.append((chat_id, text))
        return SimpleNamespace(message_id=self.next_id)

    async def do_api_request(
        self, endpoint: str, api_kwargs: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        assert endpoint == "sendMessage", endpoint
        args = api_kwargs or {}
        sent = await self.send_message(args["chat_id"], args["text"])
        return {"message_id": sent.message_id, "chat": {"id": args["chat_id"]}}


def _pending(message_id: int, chat_row: int, revision: int = 0) -> Delivery:
    """A copy into English queued for `chat_row`."""
    return Delivery(
        message_id=message_id,
        revision=revision,
        target_chat_id=chat_row,
        action="send",
        target_language="en",
        state="pending",
        attempts=0,
    )


async def _setup(db: Database) -> tuple[int, int]:
    async with db.transaction() as s:
        seeded = await seed_operation(s, chats=2)
        s.add(
            TranslationRow(
                message_id=seeded.message_id,
                revision=0,
                target_language="en",
                text="The team reached Kenscoff at 14:30",
                route="direct",
                models=["fixture_ht_en"],
                score=0.9,
                flags=[],
            )
        )
        row = _pending(seeded.message_id, seeded.chat_ids[1])
        s.add(row)
        await s.flush()
        return row.id, seeded.chat_ids[1]


async def _run_once(worker: OutboxWorker) -> None:
    rows = await worker._claim(8)
    ready = await worker.builder.prepare_many(rows)
    for row in rows:
        await worker._deliver(row, ready[row.id])


async def _row(db: Database, delivery_id: int) -> Delivery:
    async with db.reader() as s:
        row = (await s.execute(select(Delivery).where(Delivery.id == delivery_id))).scalar_one()
        return row


def _worker(db: Database, bot: ScriptedBot, clock: Clock, limiter: RateLimiter) -> OutboxWorker:
    return OutboxWorker(
        db,
        AuditChain(),
        bot,
        CopyBuilder(db, load_i18n()),  # type: ignore[arg-type]
        limiter,
        clock=clock,
    )


async def test_429_holds_the_chat_and_never_counts_as_a_failure(db: Database) -> None:
    delivery_id, _ = await _setup(db)
    clock, limiter = Clock(), RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0)
    bot = ScriptedBot(iter([RetryAfter(7)] * 20))
    worker = _worker(db, bot, clock, limiter)
    for _ in range(20):
        await _run_once(worker)
        clock.now += timedelta(seconds=8)
    row = await _row(db, delivery_id)
    assert row.state == "pending"  # 20 throttles later, still queued, never failed
    assert row.attempts <= 1
    assert limiter.held_for(-1001234567891) > 0  # that chat is held; others are not


async def test_an_outage_backs_off_but_never_fails_the_copy(db: Database) -> None:
    delivery_id, _ = await _setup(db)
    clock = Clock()
    bot = ScriptedBot(iter([NetworkError("connection refused")] * 30 + [None]))
    worker = _worker(db, bot, clock, RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0))
    delays = []
    for _ in range(31):
        await _run_once(worker)
        row = await _row(db, delivery_id)
        if row.state == "sent":
            break
        assert row.not_before is not None
        delays.append((row.not_before - clock.now).total_seconds())
        clock.now = row.not_before
    assert row.state == "sent"
    assert bot.sent
    assert "The team reached Kenscoff at 14:30" in bot.sent[0][1]
    assert max(delays) == 60  # backoff grows, capped at a minute
    assert delays[0] < delays[5]


async def test_a_timeout_is_resent_marked_as_a_possible_repeat(db: Database) -> None:
    delivery_id, _ = await _setup(db)
    clock = Clock()
    bot = ScriptedBot(iter([TimedOut()]))
    worker = _worker(db, bot, clock, RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0))
    await _run_once(worker)
    row = await _row(db, delivery_id)
    assert row.state == "pending"
    assert row.ambiguous
    clock.now += timedelta(seconds=5)
    await _run_once(worker)
    assert (await _row(db, delivery_id)).state == "sent"
    # The resent copy tells readers it may repeat one they already have.
    assert load_i18n().t("relay.possible_duplicate", "en") in bot.sent[0][1]


@pytest.mark.parametrize(
    "refusal", [BadRequest("Chat not found"), Forbidden("bot was kicked from the group chat")]
)
async def test_a_permanent_refusal_fails_the_copy_and_is_audited(
    db: Database, refusal: Exception
) -> None:
    delivery_id, _ = await _setup(db)
    worker = _worker(
        db,
        ScriptedBot(iter([refusal])),
        Clock(),
        RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0),
    )
    await _run_once(worker)
    row = await _row(db, delivery_id)
    assert row.state == "failed"
    async with db.reader() as s:
        events = (await s.execute(select(AuditEvent.event_type, AuditEvent.payload))).all()
        copies = (await s.execute(select(Copy))).scalars().all()
    assert "delivery.failed" in [e for e, _ in events]
    assert copies == []


async def test_success_records_the_copy_and_its_event_together(db: Database) -> None:
    delivery_id, chat_row = await _setup(db)
    bot = ScriptedBot(iter([]))
    worker = _worker(db, bot, Clock(), RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0))
    await asyncio.wait_for(_run_once(worker), 30)
    row = await _row(db, delivery_id)
    assert row.state == "sent"
    async with db.reader() as s:
        copies = (await s.execute(select(Copy))).scalars().all()
        sent_events = (
            (await s.execute(select(AuditEvent).where(AuditEvent.event_type == "delivery.sent")))
            .scalars()
            .all()
        )
    assert [(c.target_chat_id, c.telegram_message_id) for c in copies] == [(chat_row, 101)]
    assert len(sent_events) == 1


class _StopAfterFirstSend(ScriptedBot):
    """Posts the first copy, and the worker is told to stop while it does."""

    def __init__(self) -> None:
        super().__init__(iter([]))
        self.run_task: asyncio.Task[None] | None = None

    async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
        sent = await super().send_message(chat_id, text, **kwargs)
        assert self.run_task is not None
        self.run_task.cancel()
        return sent


async def test_stopping_leaves_nothing_half_done(db: Database) -> None:
    """The worker is told to stop while a copy is being posted: when `run` returns nothing of
    it is still running, every copy Telegram accepted is recorded as sent (not left claimed,
    to be resent later as a possible repeat), and every other row is back in the queue as it
    was. (A copy the stop request did not reach in time may have been posted: it is sent.)"""
    first_id, chat_row = await _setup(db)
    async with db.transaction() as s:
        first = (await s.execute(select(Delivery).where(Delivery.id == first_id))).scalar_one()
        second = _pending(first.message_id, chat_row, revision=1)  # behind the first
        s.add(second)
        await s.flush()
        second_id = second.id
    bot = _StopAfterFirstSend()
    worker = _worker(db, bot, Clock(), RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0))
    run = asyncio.create_task(worker.run())
    bot.run_task = run
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 30)
    assert not worker._tasks  # nothing still running for the stopped worker
    rows = [await _row(db, i) for i in (first_id, second_id)]
    assert rows[0].state == "sent"
    assert all(r.claimed_by is None and r.state in ("pending", "sent") for r in rows)
    assert sum(r.state == "sent" for r in rows) == len(bot.sent)
