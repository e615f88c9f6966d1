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

from telegram import Update
from telegram.error import Conflict, RetryAfter

from bot.delivery.ratelimit import retry_seconds
from bot.delivery.raw_updates import RawUpdate, Rejected, triage
from bot.delivery.reconnect import Backoff
from bot.observability.telemetry import Telemetry
from storage.db import Database
from storage.models import utcnow
from storage.uow import Storage, UnitOfWork

log = logging.getLogger(__name__)

_FAILED_LOG_EVERY_S = 60.0
# How long processed marks gather before they are written together.
MARK_GATHER_S = 0.05


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
        self.storage = Storage(db)
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
        self._handler_errors: dict[int, str] = {}
        # Failed updates are logged without content, and at most once a minute after the first.
        self.failed = 0
        self._failed_unlogged = 0
        self._failed_logged_at = float("-inf")
        if hasattr(app, "add_error_handler"):
            app.add_error_handler(self._on_handler_error)

    async def store(self, updates: Sequence[RawUpdate | dict[str, Any]]) -> list[int]:
        """Commit raw updates; returns the ids that are new and to be processed.

        An update already known to be unreadable (`RawUpdate.error`) is committed as `failed`
        with its reason and never dispatched; a replay of a known id is ignored."""
        raws = [u if isinstance(u, RawUpdate) else _as_raw(u) for u in updates]
        if not raws:
            return []
        now = self.clock()
        rows: list[dict[str, Any]] = [
            {
                "update_id": r.update_id,
                "payload": r.payload,
                "received_at": now,
                "state": "new" if r.error is None else "failed",
                "processed_at": None if r.error is None else now,
                "error": None if r.error is None else r.error[:255],
            }
            for r in raws
        ]
        try:
            fresh = await self.storage.write(lambda uow: uow.inbox.add_new(rows))
        except Exception as exc:
            if len(raws) == 1 and raws[0].data is None:
                raise  # already the bare id: the database itself is failing
            if len(raws) == 1:
                # This update alone cannot be written (a value the database refuses): keep its
                # id as failed, so it is neither lost silently nor fetched again for ever.
                bare = RawUpdate(raws[0].update_id, json.dumps({"update_id": raws[0].update_id}),
                                 None, _reason("unstorable", exc))  # fmt: skip
                return await self.store([bare])
            # One row may spoil the batch's statement: the others are stored one by one.
            stored: list[int] = []
            for raw in raws:
                stored += await self.store([raw])
            return stored
        for row in fresh:
            if row["state"] == "failed":
                self._failed(int(row["update_id"]), str(row["error"]))
                self.telemetry.update_processed(int(row["update_id"]), 0.0, False)
        return [int(r["update_id"]) for r in fresh if r["state"] == "new"]

    async def pending(self) -> list[tuple[int, str]]:
        """Rows not yet processed, oldest first (resumed after a restart)."""
        async with self.storage() as uow:
            return await uow.inbox.pending()

    def dispatch(self, update_id: int, payload: dict[str, Any] | str) -> None:
        """Schedule one stored update for processing (keeps per-chat order); never raises:
        an update that cannot be routed is marked failed with the reason."""
        if update_id in self._in_progress:
            return
        # One bad row must not stop the others: whatever fails here fails this update only.
        try:
            data = json.loads(payload) if isinstance(payload, str) else payload
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
        except Exception as exc:  # noqa: BLE001
            self._mark(update_id, "failed", _reason("unreadable", exc))
            self.telemetry.update_processed(update_id, 0.0, False)
            return
        try:
            key = _order_key(data)
        except Exception as exc:  # noqa: BLE001
            self._mark(update_id, "failed", _reason("unroutable", exc))
            self.telemetry.update_processed(update_id, 0.0, False)
            return
        self._in_progress.add(update_id)
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

    def record_handler_error(self, update_id: int, error: BaseException) -> None:
        """A handler raised while processing this update (the application's error handler
        calls this): the update is marked failed, with the error's kind as the reason."""
        self._handler_errors[update_id] = f"handler: {type(error).__name__}"

    async def drain(self) -> None:
        """Wait until every dispatched update was processed and marked."""
        while self._tasks or (self._mark_task is not None and not self._mark_task.done()):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if self._mark_task is not None:
                await asyncio.gather(self._mark_task, return_exceptions=True)

    async def _on_handler_error(self, update: object, context: Any) -> None:
        update_id = getattr(update, "update_id", None)
        if isinstance(update_id, int) and context.error is not None:
            self.record_handler_error(update_id, context.error)

    def _failed(self, update_id: int, reason: str) -> None:
        """Count a failed update; log it (its id and the reason's kind, never content)."""
        self.failed += 1
        self._failed_unlogged += 1
        now = time.monotonic()
        if now - self._failed_logged_at < _FAILED_LOG_EVERY_S:
            return
        self._failed_logged_at = now
        log.warning(
            "update %s failed (%s) and is kept in the inbox as failed; %d failed since the "
            "last such line, %d since start (`daraja health` counts them all)",
            update_id,
            reason.split(":", 1)[0],
            self._failed_unlogged,
            self.failed,
        )
        self._failed_unlogged = 0

    def _mark(self, update_id: int, state: str, error: str | None) -> None:
        if state == "failed":
            self._failed(update_id, error or "failed")
        self._marks.append((update_id, state, error))
        if self._mark_task is None or self._mark_task.done():
            self._mark_task = asyncio.create_task(self._write_marks())

    async def _write_marks(self) -> None:
        # Let a burst's marks gather: each batch is a transaction of its own (three round trips
        # on PostgreSQL), and a mark only needs to be durable eventually (one lost in a crash
        # replays an update, a no-op).
        await asyncio.sleep(MARK_GATHER_S)
        while self._marks:
            batch, self._marks = self._marks, []
            now = self.clock()

            async def work(
                uow: UnitOfWork,
                batch: list[tuple[int, str, str | None]] = batch,
                now: datetime = now,
            ) -> None:
                await uow.inbox.mark(batch, now)

            await self.storage.write(work)

    async def _process(self, update_id: int, data: dict[str, Any], lock: asyncio.Lock) -> None:
        async with lock, self._sem:
            started = asyncio.get_running_loop().time()
            state, error = "done", None
            try:
                upd = Update.de_json(data, self.app.bot)
                if upd is None:
                    raise ValueError("empty update")
            except Exception as exc:  # noqa: BLE001 - python-telegram-bot cannot read it
                state, error = "failed", _reason("unparseable", exc)
            else:
                try:
                    await self.app.process_update(upd)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a bad update must not stop the inbox
                    state, error = "failed", f"handler: {type(exc).__name__}"
            handler_error = self._handler_errors.pop(update_id, None)
            if handler_error is not None and state == "done":
                state, error = "failed", handler_error
            self._mark(update_id, state, error)
            self._in_progress.discard(update_id)
            self.telemetry.update_processed(
                update_id, asyncio.get_running_loop().time() - started, state == "done"
            )


def _reason(stage: str, exc: BaseException) -> str:
    """Why an update failed, for the inbox row: the stage, the error's kind and its message."""
    detail = str(exc).replace("\n", " ")
    return f"{stage}: {type(exc).__name__}: {detail}"[:255]


def _as_raw(payload: dict[str, Any]) -> RawUpdate:
    """A decoded update handed in directly (tests, older callers) as a storable raw update."""
    raw = triage(payload)
    if isinstance(raw, Rejected):
        raise ValueError(f"not a storable update: {raw.reason}")
    return raw


def _order_key(data: dict[str, Any]) -> int:
    """Updates of one chat are processed in order; others run concurrently. A chat (or
    sender) id that is not an integer cannot be routed: ValueError."""
    for field in ("message", "edited_message", "channel_post", "edited_channel_post"):
        msg = data.get(field)
        if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
            return _id(msg["chat"])
    callback = data.get("callback_query")
    if isinstance(callback, dict):
        msg = callback.get("message")
        if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
            return _id(msg["chat"])
        sender = callback.get("from")
        if isinstance(sender, dict):
            return _id(sender)
    member = data.get("my_chat_member") or data.get("chat_member")
    if isinstance(member, dict) and isinstance(member.get("chat"), dict):
        return _id(member["chat"])
    return 0


def _id(obj: dict[str, Any]) -> int:
    value = obj.get("id", 0)
    # bool is an int subclass; a float, string or object is no Telegram id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"chat id is a {type(value).__name__}, not an integer")
    return value


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
        retry_max: float = 30.0,
    ) -> None:
        self.bot = bot
        self.inbox = inbox
        self.timeout = timeout
        self.allowed_updates = list(allowed_updates) if allowed_updates else None
        self.telemetry = telemetry or Telemetry()
        self.offset: int | None = None
        self.retry = Backoff(retry_max)
        self.rejected = 0
        self._rejected_logged_at = float("-inf")

    async def run(self) -> None:
        """Poll until cancelled; nothing but cancellation ends it (failures are retried)."""
        while True:
            try:
                results = await self._fetch()
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc.retry_after))
                continue
            except Conflict:
                self.retry.failed("getUpdates: another bot instance is polling with this token")
                await asyncio.sleep(5)
                continue
            except Exception as exc:  # noqa: BLE001 - the poller must outlive any failure
                await asyncio.sleep(self.retry.failed(f"getUpdates failed ({type(exc).__name__})"))
                continue
            self.retry.succeeded("getUpdates")
            if not results:
                continue
            try:
                await self._take(results)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - not confirmed: the batch comes again
                why = f"updates could not be stored ({type(exc).__name__}); fetching them again"
                await asyncio.sleep(self.retry.failed(why))

    async def _fetch(self) -> list[Any]:
        """One getUpdates call, its elements undecoded (python-telegram-bot's `get_updates`
        parses the whole batch at once, so one bad update would fail them all)."""
        params: dict[str, Any] = {"timeout": self.timeout, "offset": self.offset}
        if self.allowed_updates is not None:
            params["allowed_updates"] = self.allowed_updates
        result = await self.bot._post(  # the same request, without the parse
            "getUpdates", params, read_timeout=self.timeout + 10
        )
        return list(result) if isinstance(result, list) else []

    async def _take(self, results: Sequence[Any]) -> None:
        """Store a batch (each update on its own), confirm it, dispatch the new ones."""
        raws: list[RawUpdate] = []
        highest: int | None = None
        for value in results:
            raw = triage(value)
            if isinstance(raw, Rejected):
                # Nothing to key a row by (Telegram's own ids always are usable): counted and
                # logged, at most once a minute, and confirmed like the rest of the batch.
                self.rejected += 1
                now = time.monotonic()
                if now - self._rejected_logged_at >= _FAILED_LOG_EVERY_S:
                    self._rejected_logged_at = now
                    log.warning(
                        "getUpdates returned an update that cannot be stored (%s); "
                        "%d such since start",
                        raw.reason,
                        self.rejected,
                    )
                seen = value.get("update_id") if isinstance(value, dict) else None
                if isinstance(seen, int) and not isinstance(seen, bool):
                    highest = seen if highest is None else max(highest, seen)
                continue
            raws.append(raw)
            highest = raw.update_id if highest is None else max(highest, raw.update_id)
        fresh = await self.inbox.store(raws)
        # Committed: the next getUpdates may confirm them to Telegram.
        if highest is not None:
            self.offset = highest + 1
        self.telemetry.updates_fetched(fresh, time.monotonic())
        by_id = {r.update_id: r for r in raws}
        for update_id in fresh:
            data = by_id[update_id].data
            self.inbox.dispatch(update_id, data if data is not None else by_id[update_id].payload)
