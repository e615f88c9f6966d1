"""Telegram's sending limits, kept per chat and overall, so one slow chat never blocks others.

Telegram allows about one message per second in a chat, 20 per minute in a group and 30 per
second overall. A 429 `retry_after` closes one chat until it passes; other chats go on.
A rate of 0 disables that limit (benchmarks against the sandbox with its limits relaxed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

# Telegram's limits are approximate and measured on its side, after network jitter: keep 10%
# below them so two sends a hair apart never count as two in one window.
MARGIN = 1.1


def retry_seconds(value: Any) -> float:
    """A 429's retry_after as seconds (python-telegram-bot gives int or timedelta)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


@dataclass
class _Window:
    limit: int
    period: float
    stamps: deque[float] = field(default_factory=deque)

    def wait_time(self, now: float) -> float:
        while self.stamps and now - self.stamps[0] >= self.period:
            self.stamps.popleft()
        if self.limit <= 0 or len(self.stamps) < self.limit:
            return 0.0
        return self.period - (now - self.stamps[0])


class RateLimiter:
    """Sliding-window limits per chat, per group and overall, plus per-chat 429 holds."""

    def __init__(
        self,
        *,
        global_per_s: float = 30,
        chat_per_s: float = 1,
        group_per_min: float = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.global_per_s = global_per_s
        self.chat_per_s = chat_per_s
        self.group_per_min = group_per_min
        self.clock = clock
        self._global = _Window(int(global_per_s), 1.0)
        self._chats: dict[int, _Window] = {}
        self._groups: dict[int, _Window] = {}
        self._held: dict[int, float] = {}
        self._lock = asyncio.Lock()

    def _chat_window(self) -> _Window:
        if self.chat_per_s >= 1:
            return _Window(int(self.chat_per_s), MARGIN)
        return _Window(1, MARGIN / self.chat_per_s)

    def hold(self, chat_id: int, seconds: float) -> None:
        """Send nothing to this chat for `seconds` (Telegram said retry_after)."""
        self._held[chat_id] = max(self._held.get(chat_id, 0.0), self.clock() + seconds)

    def held_for(self, chat_id: int) -> float:
        """Seconds until this chat may be sent to again because of a 429."""
        return max(0.0, self._held.get(chat_id, 0.0) - self.clock())

    def _windows(self, chat_id: int) -> list[_Window]:
        windows = [self._global]
        if self.chat_per_s > 0:
            windows.append(self._chats.setdefault(chat_id, self._chat_window()))
        if chat_id < 0 and self.group_per_min > 0:
            windows.append(
                self._groups.setdefault(chat_id, _Window(int(self.group_per_min), 60.0 * MARGIN))
            )
        return windows

    def sent(self, chat_id: int, stamp: float) -> None:
        """The send counted at `stamp` (what acquire returned) has finished: count it in the
        chat's windows from now. Telegram counts a message when it arrives, which can be any
        time before the answer; counting from the answer keeps the next send a whole window
        after it, however late the network or a busy process made this one."""
        now = self.clock()
        for window in self._windows(chat_id)[1:]:
            if stamp in window.stamps and now > stamp:
                window.stamps.remove(stamp)
                at = len(window.stamps)
                while at > 0 and window.stamps[at - 1] > now:
                    at -= 1
                window.stamps.insert(at, now)

    async def acquire_stamp(self, chat_id: int) -> tuple[float, float]:
        """Wait until one message may go to `chat_id`: (seconds waited, the send's stamp to
        hand to `sent` once it finished)."""
        waited = 0.0
        while True:
            async with self._lock:
                now = self.clock()
                delay = self.held_for(chat_id)
                windows = self._windows(chat_id)
                for window in windows:
                    delay = max(delay, window.wait_time(now))
                if delay <= 0:
                    for window in windows:
                        if window.limit > 0:
                            window.stamps.append(now)
                    return waited, now
            await asyncio.sleep(delay)
            waited += delay

    async def acquire(self, chat_id: int) -> float:
        """Wait until one message may go to `chat_id`; returns the seconds waited."""
        waited, _ = await self.acquire_stamp(chat_id)
        return waited


# Methods that post or change a message in a chat count against Telegram's limits.
LIMITED_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "copyMessage",
        "forwardMessage",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendVoice",
        "sendAudio",
        "sendAnimation",
        "sendLocation",
        "sendVenue",
        "sendPoll",
        "deleteMessage",
    }
)


class TelegramRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """python-telegram-bot's hook: every request the bot makes goes through one `RateLimiter`.

    Handler replies wait for their turn and retry a 429 a few times (holding only that chat);
    the outbox passes `rate_limit_args={"retries": 0}` and requeues the row itself instead.
    """

    def __init__(self, limiter: RateLimiter, *, retries: int = 3) -> None:
        self.limiter = limiter
        self.retries = retries
        self.waited = 0.0  # seconds spent waiting for the limits (benchmarks read it)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for the chat's turn, send, and on a 429 hold the chat and maybe retry."""
        from telegram.error import RetryAfter

        chat = data.get("chat_id")
        limited = endpoint in LIMITED_METHODS and isinstance(chat, int | str)
        chat_id = _chat_key(chat)
        retries = self.retries if rate_limit_args is None else rate_limit_args.get("retries", 0)
        attempt = 0
        stamp = 0.0
        while True:
            if limited:
                waited, stamp = await self.limiter.acquire_stamp(chat_id)
                self.waited += waited
                log.debug("%s to %s after %.2fs", endpoint, chat_id, waited)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                delay = retry_seconds(exc.retry_after)
                if limited:
                    self.limiter.hold(chat_id, delay)
                if attempt >= retries:
                    raise
                attempt += 1
                if not limited:
                    await asyncio.sleep(delay)
            finally:
                if limited:
                    self.limiter.sent(chat_id, stamp)


def _chat_key(chat: Any) -> int:
    try:
        return int(chat)
    except (TypeError, ValueError):
        return hash(chat)
