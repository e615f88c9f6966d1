"""Waiting for the Bot API: backoff between attempts, and logs an operator can read.

A field link that is down must not flood the log (or print tracebacks) and must not stop the
bot: `Backoff` doubles the wait from 1 s to a ceiling (DARAJA_TELEGRAM_RETRY_MAX_SECONDS),
logs the first failure, then at most one line a minute while it lasts, and one when it ends.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class Backoff:
    """Waits between attempts to reach the Bot API: 1 s doubling up to `longest`; one log line
    when it goes down, at most one a minute while down (no traceback), one when it is back."""

    def __init__(self, longest: float, *, log_every: float = 60.0) -> None:
        self.longest = longest
        self.log_every = log_every
        self.delay = min(1.0, longest)
        self.failures = 0
        self._down_since: float | None = None
        self._logged_at = float("-inf")

    def failed(self, what: str) -> float:
        """Record a failed attempt; returns how long to wait before the next."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        self.failures += 1
        wait = self.delay
        self.delay = min(self.delay * 2, self.longest)
        if now - self._logged_at >= self.log_every:
            self._logged_at = now
            log.warning(
                "%s; retrying (%d attempts in %.0fs so far, next in %.3gs)",
                what,
                self.failures,
                now - self._down_since,
                wait,
            )
        return wait

    def succeeded(self, what: str) -> None:
        """Record a success (one line if it had been failing)."""
        if self._down_since is not None:
            log.info(
                "%s works again after %d failed attempts in %.0fs",
                what,
                self.failures,
                time.monotonic() - self._down_since,
            )
        self.delay = min(1.0, self.longest)
        self.failures = 0
        self._down_since = None
        self._logged_at = float("-inf")
