"""The durable inbox: every update is committed before Telegram is told it was received.

python-telegram-bot's Updater confirms an update's offset with the next `getUpdates` before the
handler has run, so a hard crash can lose a fetched batch. Here the bot fetches updates itself,
commits each raw update keyed by `update_id` (a replay is ignored), and only then asks for the
next batch (which confirms the previous one). Updates are processed from the inbox: one at a
time per chat (order kept), different chats concurrently. A restart first resumes every row not
marked done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TimedOut

from bot.ratelimit import retry_seconds
from bot.telemetry import Telemetry
from storage.db import Database
from storage.models import InboxUpdate, utcnow

log = logging.getLogger(__name__)


class InboxProcessor:
    """Stores raw updates and runs them through the application, ordered per chat."""

    def __init__(
        self,
        db: Database,
        app: Any,
        *,
        concurrency: int = 64,
        clock: Callable[[], datetime] = utcnow,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.db = db
        self.app = app
        self.clock = clock
        self.telemetry = telemetry or Telemetry()
        self._sem = asyncio.Semaphore(concurrency)
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_progress: set[int] = set()
        # Processed marks are written in batches (one commit for many updates); a mark lost in
        # a crash only means the update is replayed, and replays are no-ops.
        self._marks: list[tuple[int, str, str | None]] = []
        self._mark_task: asyncio.Task[None] | None = None

    async def store(self, payloads: Sequence[dict[str, Any]]) -> list[int]:
        """Commit raw updates; returns the ids that were new (replays are ignored)."""
        if not payloads:
            return []
        ids = [int(p["update_id"]) for p in payloads]
        rows = [
            {
                "update_id": int(p["update_id"]),
                "payload": json.dumps(p, ensure_ascii=False),
                "received_at": self.clock(),
                "state": "new",
            }
            for p in payloads
        ]
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert

        def work(s: Session) -> list[dict[str, Any]]:
            existing = set(
                s.execute(
                    select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids))
                ).scalars()
            )
            fresh = [r for r in rows if r["update_id"] not in existing]
            if fresh:
                stmt = (
                    insert(InboxUpdate)
                    .values(fresh)
                    .on_conflict_do_nothing(index_elements=["update_id"])
                )
                s.execute(stmt)
            return fresh

        fresh = await self.db.write(work)
        return [int(str(r["update_id"])) for r in fresh]

    async def pending(self) -> list[tuple[int, str]]:
        """Rows not yet processed, oldest first (resumed after a restart)."""
        async with self.db.transaction() as s:
            result = await s.execute(
                select(InboxUpdate.update_id, InboxUpdate.payload)
                .where(InboxUpdate.state == "new")
                .order_by(InboxUpdate.update_id)
            )
            return [(int(a), str(b)) for a, b in result.all()]

    def dispatch(self, update_id: int, payload: dict[str, Any] | str) -> None:
        """Schedule one stored update for processing (keeps per-chat order)."""
        if update_id in self._in_progress:
            return
        self._in_progress.add(update_id)
        data = json.loads(payload) if isinstance(payload, str) else payload
        key = _order_key(data)
        lock = self._chat_locks.setdefault(key, asyncio.Lock())
        task = asyncio.create_task(self._process(update_id, data, lock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> int:
        """Dispatch every stored update that was not processed (after a crash)."""
        rows = await self.pending()
        for update_id, payload in rows:
            self.dispatch(update_id, payload)
        if rows:
            log.info("resuming %d updates from the inbox", len(rows))
        return len(rows)

    async def drain(self) -> None:
        """Wait until every dispatched update was processed and marked."""
        while self._tasks or (self._mark_task is not None and not self._mark_task.done()):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if self._mark_task is not None:
                await asyncio.gather(self._mark_task, return_exceptions=True)

    def _mark(self, update_id: int, state: str, error: str | None) -> None:
        self._marks.append((update_id, state, error))
        if self._mark_task is None or self._mark_task.done():
            self._mark_task = asyncio.create_task(self._write_marks())

    async def _write_marks(self) -> None:
        await asyncio.sleep(0.01)  # let a burst's marks gather
        while self._marks:
            batch, self._marks = self._marks, []
            now = self.clock()

            def work(
                s: Session,
                batch: list[tuple[int, str, str | None]] = batch,
                now: datetime = now,
            ) -> None:
                for state in ("done", "failed"):
                    ids = [u for u, st, _ in batch if st == state]
                    if ids:
                        s.execute(
                            update(InboxUpdate)
                            .where(InboxUpdate.update_id.in_(ids))
                            .values(state=state, processed_at=now)
                        )
                for update_id, _state, error in batch:
                    if error:
                        s.execute(
                            update(InboxUpdate)
                            .where(InboxUpdate.update_id == update_id)
                            .values(error=error)
                        )

            await self.db.write(work)

    async def _process(self, update_id: int, data: dict[str, Any], lock: asyncio.Lock) -> None:
        async with lock, self._sem:
            started = asyncio.get_running_loop().time()
            state, error = "done", None
            try:
                upd = Update.de_json(data, self.app.bot)
                if upd is None:
                    raise ValueError("empty update")
                await self.app.process_update(upd)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bad update must not stop the inbox
                state, error = "failed", type(exc).__name__
                log.warning("update %s could not be processed: %s", update_id, error)
            self._mark(update_id, state, error)
            self._in_progress.discard(update_id)
            self.telemetry.update_processed(
                update_id, asyncio.get_running_loop().time() - started, state == "done"
            )


def _order_key(data: dict[str, Any]) -> int:
    """Updates of one chat are processed in order; others run concurrently."""
    for field in ("message", "edited_message", "channel_post", "edited_channel_post"):
        msg = data.get(field)
        if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
            return int(msg["chat"].get("id", 0))
    callback = data.get("callback_query")
    if isinstance(callback, dict):
        msg = callback.get("message")
        if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
            return int(msg["chat"].get("id", 0))
        sender = callback.get("from")
        if isinstance(sender, dict):
            return int(sender.get("id", 0))
    member = data.get("my_chat_member") or data.get("chat_member")
    if isinstance(member, dict) and isinstance(member.get("chat"), dict):
        return int(member["chat"].get("id", 0))
    return 0


class Poller:
    """Long-polls getUpdates, commits each batch to the inbox, then dispatches it."""

    def __init__(
        self,
        bot: Any,
        inbox: InboxProcessor,
        *,
        timeout: int = 25,
        allowed_updates: Sequence[str] | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.bot = bot
        self.inbox = inbox
        self.timeout = timeout
        self.allowed_updates = list(allowed_updates) if allowed_updates else None
        self.telemetry = telemetry or Telemetry()
        self.offset: int | None = None

    async def run(self) -> None:
        """Poll until cancelled; network trouble is retried with backoff."""
        backoff = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=self.offset,
                    timeout=self.timeout,
                    allowed_updates=self.allowed_updates,
                    read_timeout=self.timeout + 10,
                )
                backoff = 1.0
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc.retry_after))
                continue
            except Conflict:
                log.error("another bot instance is polling with this token; retrying")
                await asyncio.sleep(5)
                continue
            except (TimedOut, NetworkError) as exc:
                log.warning(
                    "getUpdates failed (%s); retrying in %.0fs", type(exc).__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            if not updates:
                continue
            payloads = [u.to_dict() for u in updates]
            fresh = await self.inbox.store(payloads)
            # Committed: the next getUpdates may confirm them to Telegram.
            self.offset = max(u.update_id for u in updates) + 1
            self.telemetry.updates_fetched(fresh, time.monotonic())
            by_id = {int(p["update_id"]): p for p in payloads}
            for update_id in fresh:
                self.inbox.dispatch(update_id, by_id[update_id])
