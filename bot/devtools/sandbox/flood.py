"""Flood control like Telegram's, fault injection on demand, and the log of every request.

Rates are leaky buckets (capacity = burst, refilled continuously), the same shape as the
limiters bots use (aiolimiter in python-telegram-bot's AIORateLimiter), so "20 per minute in a
group" means a burst of 20 and then one every 3 s. A request that would exceed a limit gets
429 "Too Many Requests: retry after N" and consumes nothing; only successful sends consume.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

FaultKind = Literal["flood", "server_error", "timeout_after_accept", "drop"]
FAULT_KINDS: tuple[str, ...] = ("flood", "server_error", "timeout_after_accept", "drop")

# Methods that post or change a message count against the per-chat and global limits.
LIMITED_METHODS = frozenset(
    {
        "sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendVoice", "sendLocation",
        "sendVenue", "copyMessage", "forwardMessage", "editMessageText",
        "editMessageReplyMarkup",
    }
)  # fmt: skip


@dataclass(frozen=True)
class FloodLimits:
    """Rates the sandbox enforces; `enabled=False` turns flood control off (burst tests)."""

    enabled: bool = True
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20
    global_per_second: float = 30.0
    global_burst: int = 30

    def to_json(self) -> dict[str, Any]:
        """The limits as a JSON object (for the control API)."""
        return asdict(self)


class _Bucket:
    """A leaky bucket: `capacity` tokens, refilled at `rate` tokens per second."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 if available now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        """Consume one token."""
        self._refill(now)
        self.tokens -= 1


class FloodControl:
    """Per-chat and global rate limits."""

    def __init__(
        self, limits: FloodLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or FloodLimits()
        self._clock = clock
        self._chats: dict[int, _Bucket] = {}
        self._global: _Bucket | None = None

    def configure(self, **changes: Any) -> FloodLimits:
        """Change some limits (buckets start full again) and return the new limits."""
        self.limits = replace(self.limits, **changes)
        self.reset()
        return self.limits

    def reset(self) -> None:
        """Forget all consumption."""
        self._chats.clear()
        self._global = None

    def _buckets(self, chat_id: int | None) -> list[_Bucket]:
        now = self._clock()
        lim = self.limits
        if self._global is None:
            self._global = _Bucket(lim.global_burst, lim.global_per_second, now)
        buckets = [self._global]
        if chat_id is not None:
            bucket = self._chats.get(chat_id)
            if bucket is None:
                if chat_id > 0:
                    bucket = _Bucket(lim.private_burst, lim.private_per_second, now)
                else:
                    bucket = _Bucket(lim.group_burst, lim.group_per_minute / 60.0, now)
                self._chats[chat_id] = bucket
            buckets.append(bucket)
        return buckets

    def retry_after(self, chat_id: int | None) -> int | None:
        """Whole seconds to wait if a send to `chat_id` now would exceed a limit, else None."""
        if not self.limits.enabled:
            return None
        now = self._clock()
        wait = max(b.wait(now) for b in self._buckets(chat_id))
        return max(1, math.ceil(wait)) if wait > 0 else None

    def consume(self, chat_id: int | None) -> None:
        """Record one successful send to `chat_id`."""
        if not self.limits.enabled:
            return
        now = self._clock()
        for bucket in self._buckets(chat_id):
            bucket.take(now)


@dataclass
class Fault:
    """One injected fault: which requests it hits, how often, and what happens to them."""

    id: int
    kind: FaultKind
    method: str | None = None  # canonical Bot API method name, None: any
    chat_id: int | None = None  # None: any chat
    count: int | None = 1  # fire for the next `count` matching calls (None: no limit)
    probability: float | None = None  # fire with this probability (seeded)
    seed: int | None = None
    retry_after: int = 5  # for "flood"
    status: int = 500  # for "server_error"
    delay: float | None = None  # for "timeout_after_accept": None drops the connection
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def hits(self, method: str, chat_id: int | None) -> bool:
        """Whether this fault fires for this call (consumes one use if so)."""
        if self.count is not None and self.fired >= self.count:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        if self.chat_id is not None and self.chat_id != chat_id:
            return False
        if self.probability is not None and self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        """The fault as a JSON object."""
        data = asdict(self)
        data.pop("_rng", None)
        return data


class FaultInjector:
    """The faults currently armed, checked in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, kind: str, **options: Any) -> Fault:
        """Arm a fault; see `Fault` for the options."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        fault = Fault(id=self._next_id, kind=kind, **options)  # type: ignore[arg-type]
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def pick(self, method: str, chat_id: int | None) -> Fault | None:
        """The first armed fault that fires for this call, if any."""
        for fault in self._faults:
            if fault.hits(method, chat_id):
                return fault
        return None

    def clear(self) -> None:
        """Disarm every fault."""
        self._faults.clear()

    def active(self) -> list[Fault]:
        """Faults that can still fire."""
        return [f for f in self._faults if f.count is None or f.fired < f.count]


@dataclass(frozen=True)
class RequestRecord:
    """One Bot API request as the sandbox saw it."""

    seq: int
    at: float  # monotonic seconds since the sandbox started
    method: str
    chat_id: int | None
    status: int
    outcome: str  # "ok", "error", "flood", "fault:<kind>", "unauthorized", "not_found"

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object."""
        return asdict(self)


class RequestLog:
    """Every request with its time, method, chat and outcome."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self.records: list[RequestRecord] = []

    def add(self, method: str, chat_id: int | None, status: int, outcome: str) -> RequestRecord:
        """Append one record."""
        record = RequestRecord(
            len(self.records) + 1, self._clock() - self._start, method, chat_id, status, outcome
        )
        self.records.append(record)
        return record

    def clear(self) -> None:
        """Forget all records."""
        self.records.clear()
