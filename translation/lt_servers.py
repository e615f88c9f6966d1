"""What Daraja knows of each LibreTranslate server: its pairs, limits, health and pace.

One `ServerState` per configured URL, owned by `translation.libretranslate.LibreTranslateClient`:
- the pairs it lists in `GET /languages` (refreshed every `languages_ttl_s`; a failed refresh
  keeps the last list and is retried with doubling backoff, 1 s up to 5 minutes);
- its per-text character limit (`charLimit` of `GET /frontend/settings` when it gives one)
  and its batch limit (LibreTranslate does not publish `--batch-limit`: a configured default,
  lowered when a 400 "exceeds text limit" names the real one);
- when it may be asked again: after a failure, after an auth failure (a long cooldown), and
  per pair (a pair it lacks, or one that kept failing);
- a cap on its requests in flight (LibreTranslate translates each request on its own; a burst
  of parallel requests only queues inside it until they time out), and a pacer charging each
  request `len(q)` against a per-minute budget, which is how LibreTranslate counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from urllib.parse import urlsplit

LANGUAGES_BACKOFF_MAX_S = 300.0


@dataclasses.dataclass
class ServerStats:
    """What one server did (tests, logs and the benchmark)."""

    requests: int = 0
    ok: int = 0
    failures: int = 0
    timeouts: int = 0
    segments_sent: int = 0
    down_until: float = 0.0


def host_of(url: str) -> str:
    """A server's host:port for logs (never a path or query that could hold a key)."""
    return urlsplit(url).netloc or url


class Pacer:
    """A token bucket of `per_minute` segments; a request of n segments costs n.

    A request may borrow ahead (the balance goes negative) and waits until its share is due,
    so waiters are served in arrival order; one that would wait longer than `max_wait_s` is
    not sent (the caller tries another server or the local models).
    """

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._tokens = per_minute
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        rate = self.per_minute / 60.0
        self._tokens = min(self.per_minute, self._tokens + (now - self._at) * rate)
        self._at = now

    def reserve(self, cost: int, max_wait_s: float) -> float | None:
        """Seconds to wait before sending `cost` segments, or None when that is too long."""
        if self.per_minute <= 0:
            return 0.0
        self._refill()
        cost = min(cost, int(self.per_minute)) or 1
        wait = max(0.0, (cost - self._tokens) / (self.per_minute / 60.0))
        if wait > max_wait_s:
            return None
        self._tokens -= cost
        return wait

    def exhaust(self) -> None:
        """The server said 429: assume the whole minute's budget is spent."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)


class ServerState:
    """One LibreTranslate server as the client sees it."""

    def __init__(
        self,
        url: str,
        *,
        max_in_flight: int,
        per_minute: float,
        batch_limit: int,
        char_limit: int | None,
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self.host = host_of(url)
        self.stats = ServerStats()
        self.clock = clock
        self.max_in_flight = max_in_flight
        self.slots = asyncio.Semaphore(max_in_flight)
        self.pacer = Pacer(per_minute, clock)
        self.batch_limit = batch_limit
        self.char_limit = char_limit
        self.pairs: frozenset[tuple[str, str]] | None = None
        self.pairs_fresh_until = 0.0
        self.languages_retry_at = 0.0
        self.languages_failures = 0
        self.languages_lock = asyncio.Lock()
        self.auth_down_until = 0.0
        self.pair_down: dict[tuple[str, str], float] = {}
        self.pair_failures: dict[tuple[str, str], int] = {}

    def up(self) -> bool:
        """Neither cooling down after a failure nor after an auth failure."""
        now = self.clock()
        return self.stats.down_until <= now and self.auth_down_until <= now

    def serves(self, source: str, target: str) -> bool:
        """Listed the pair (or no list yet) and the pair is not cooling down here."""
        if self.pairs is not None and (source, target) not in self.pairs:
            return False
        return self.pair_down.get((source, target), 0.0) <= self.clock()

    def languages_due(self) -> bool:
        """Whether `/languages` should be asked now (stale, and not inside a backoff)."""
        now = self.clock()
        return now >= self.pairs_fresh_until and now >= self.languages_retry_at

    def languages_failed(self) -> float:
        """Record a failed `/languages`; the seconds until the next try (1, 2, 4 … 300)."""
        self.languages_failures += 1
        pause = min(LANGUAGES_BACKOFF_MAX_S, 2.0 ** (self.languages_failures - 1))
        self.languages_retry_at = self.clock() + pause
        return pause

    def languages_ok(self, pairs: frozenset[tuple[str, str]], ttl_s: float) -> None:
        """Record a fresh pair list; pairs it now lists are no longer held as missing."""
        self.pairs = pairs
        self.pairs_fresh_until = self.clock() + ttl_s
        self.languages_failures = 0
        self.languages_retry_at = 0.0
        for pair in [p for p in self.pair_down if p in pairs]:
            if self.pair_failures.get(pair, 0) == 0:
                del self.pair_down[pair]

    def pair_missing(self, source: str, target: str, ttl_s: float) -> None:
        """The server said it lacks the pair (until `ttl_s` or the next `/languages`)."""
        self.pair_down[(source, target)] = self.clock() + ttl_s
        if self.pairs is not None:
            self.pairs = self.pairs - {(source, target)}

    def pair_failed(self, source: str, target: str, base_s: float) -> float:
        """A request for this pair failed here: doubling pause for the pair, returned."""
        key = (source, target)
        count = self.pair_failures.get(key, 0) + 1
        self.pair_failures[key] = count
        pause = min(LANGUAGES_BACKOFF_MAX_S * 4, base_s * 2.0 ** (count - 1))
        self.pair_down[key] = self.clock() + pause
        return pause

    def pair_ok(self, source: str, target: str) -> None:
        """A request for this pair succeeded: its failure count starts again."""
        self.pair_failures.pop((source, target), None)

    def chunks(
        self, texts: list[tuple[int, str]]
    ) -> tuple[list[list[tuple[int, str]]], list[int]]:
        """Split (index, text) items into requests within the limits; indexes of texts longer
        than the character limit on their own (never sent here)."""
        out: list[list[tuple[int, str]]] = []
        too_long: list[int] = []
        current: list[tuple[int, str]] = []
        for item in texts:
            if self.char_limit is not None and len(item[1]) > self.char_limit:
                too_long.append(item[0])
                continue
            if len(current) >= max(1, self.batch_limit):
                out.append(current)
                current = []
            current.append(item)
        if current:
            out.append(current)
        return out, too_long
