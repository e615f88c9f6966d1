"""The limiter spaces a chat's sends by when the previous one finished, so a send held up by
the network or a busy process never lands within Telegram's window of the next."""

from __future__ import annotations

from typing import Any

import pytest

from bot.delivery.ratelimit import MARGIN, RateLimiter, TelegramRateLimiter


class Clock:
    """A clock the test moves; asyncio.sleep of the limiter is replaced by moving it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_next_send_waits_a_window_after_the_previous_send_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    limiter = RateLimiter(chat_per_s=1, group_per_min=0, clock=clock)
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        clock.now += delay

    monkeypatch.setattr("bot.delivery.ratelimit.asyncio.sleep", sleep)
    rate = TelegramRateLimiter(limiter)

    async def slow_send(*_: Any, **__: Any) -> bool:
        clock.now += 0.5  # the request took half a second to be answered
        return True

    for _ in range(2):
        await rate.process_request(slow_send, (), {}, "sendMessage", {"chat_id": 5}, None)
    # First send: stamped at 0, answered at 0.5; the second may go at 0.5 + MARGIN.
    assert sum(slept) == MARGIN
    assert clock.now == 0.5 + MARGIN + 0.5
    # Another chat is not held by this one.
    await rate.process_request(slow_send, (), {}, "sendMessage", {"chat_id": 6}, None)
    assert sum(slept) == MARGIN


async def test_a_group_send_answered_with_an_error_counts_from_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from telegram.error import BadRequest

    clock = Clock()
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        clock.now += delay

    monkeypatch.setattr("bot.delivery.ratelimit.asyncio.sleep", sleep)
    rate = TelegramRateLimiter(RateLimiter(chat_per_s=1, group_per_min=20, clock=clock))

    async def refused(*_: Any, **__: Any) -> bool:
        clock.now += 0.3
        raise BadRequest("Message is too long")

    with pytest.raises(BadRequest):
        await rate.process_request(refused, (), {}, "sendMessage", {"chat_id": -100}, None)
    clock.now = MARGIN  # a window after the first send started, 0.3 s short of after it ended
    await rate.limiter.acquire(-100)
    assert len(slept) == 1
    assert abs(slept[0] - 0.3) < 1e-9
