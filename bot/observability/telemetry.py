"""One observation point for the bot's moving parts (metrics, benchmarks).

Components call a `Telemetry`; the base class ignores everything. `bot.observability.metrics`
exports the same observations to Prometheus, and `daraja bench relay` uses them to measure relay
overhead.
Times are `time.monotonic()` seconds; nothing here sees message text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class Telemetry:
    """No-op observer; subclasses record what they need."""

    def updates_fetched(self, update_ids: Sequence[int], at: float) -> None:
        """A getUpdates batch was committed to the inbox."""

    def update_processed(self, update_id: int, seconds: float, ok: bool) -> None:
        """An update went through the handlers."""

    def message_translated(
        self, update_id: int | None, seconds: float, translations: Mapping[str, Any]
    ) -> None:
        """A message's translations were computed (all targets, `seconds` in total)."""

    def message_queued(self, update_id: int | None, message_id: int, copies: int) -> None:
        """A message and its copies were recorded."""

    def copy_claimed(self, delivery_id: int, message_id: int, at: float) -> None:
        """A worker took one copy off the queue (its wait in the queue ends here)."""

    def copy_posted(self, delivery_id: int, message_id: int, at: float) -> None:
        """Telegram accepted one copy (its last part): it is in the chat now."""

    def copy_sent(self, delivery_id: int, message_id: int, at: float) -> None:
        """One copy reached Telegram and its outcome is recorded."""

    def copy_failed(self, delivery_id: int, reason: str) -> None:
        """One copy was given up."""

    def rate_limited(self, chat_id: int, retry_after: float) -> None:
        """Telegram answered 429 for a chat."""

    def outbox_depth(self, pending: int, oldest_age: float) -> None:
        """How much waits in the outbox, and for how long the oldest row has waited."""
