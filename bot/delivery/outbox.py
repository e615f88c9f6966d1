"""The outbox worker: delivers queued copies in order per chat, within Telegram's limits.

Rows are claimed from the database (`storage.outbox_claim`: one in flight per chat, oldest
first; `FOR UPDATE SKIP LOCKED` on PostgreSQL so several processes can share the work). Each
posted part is recorded in the message map at once, so a retry never re-posts a part that
Telegram accepted. Failures:
- 429: the chat is held for `retry_after` (others continue) and the row waits.
- network error before Telegram answered: retried with backoff; a *timeout* may mean Telegram
  did post the copy, so the retry is marked ambiguous and carries a visible "possible repeat"
  line. Trade-off: an order is never lost; a duplicate is possible and is labelled as such.
- the chat migrated to a supergroup: the enrollment follows and the row is retried.
- a permanent refusal (bot removed, chat gone, bad request): the row fails and is audited.
Rows left `sending` by a crashed worker are returned to the queue after a lease, ambiguous.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot
from telegram.warnings import PTBUserWarning

from bot.delivery.ratelimit import RateLimiter, retry_seconds
from bot.observability.telemetry import Telemetry
from bot.services.copies import CopyBuilder, PreparedCopy
from storage.audit import AuditChain, PendingEvent
from storage.db import Database
from storage.models import Chat, Copy, Delivery, utcnow
from storage.outbox import FinishingRow, TargetChat
from storage.outbox_claim import Claimed
from storage.uow import Storage, UnitOfWork

log = logging.getLogger(__name__)

# Outbox actions that change a copy already posted rather than post a new one.
EDIT_ACTIONS = frozenset({"edit", "reannotate", "rebackcheck"})
# An outcome to record: delivery id, state, error, the copy, its last posted part.
FinishItem = tuple[int, str, "str | None", "PreparedCopy | None", "tuple[int, int] | None"]
# What recording outcomes writes: message-map rows, the rows' new states, audit events.
Outcomes = tuple[list[dict[str, Any]], list[dict[str, Any]], list[PendingEvent]]

# `_send_text` calls sendMessage through `do_api_request` on purpose (see there); python-telegram-
# bot would suggest its typed method each time.
warnings.filterwarnings(
    "ignore", message=r"Please use 'Bot\.sendMessage'", category=PTBUserWarning
)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# The outbox handles 429s itself (hold the chat, requeue the row): no retry inside the limiter.
NO_RETRY = {"retries": 0}
MAX_ATTEMPTS = 12
FINISH_BATCH = 64
# Stopping: how long outcomes being recorded may take before they are given up on.
STOP_COMMIT_WAIT_S = 10.0
# Turns of the event loop a finished copy's outcome waits for others to share its commit.
FINISH_GATHER_TURNS = 2


class OutboxWorker:
    """Claims due deliveries and posts them; one task per copy, one copy per chat at a time."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        bot: ExtBot[Any],
        builder: CopyBuilder,
        limiter: RateLimiter,
        *,
        concurrency: int = 32,
        lease: timedelta = timedelta(seconds=90),
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        telemetry: Telemetry | None = None,
        sole_deliverer: bool = False,
    ) -> None:
        self.db = db
        self.audit = audit
        self.storage = Storage(db, audit)
        self.bot = bot
        self.builder = builder
        # The only process that delivers from this database (SQLite: one bot per file, held by
        # its run lock): rows still `sending` at start were left by a process that died, so
        # they are resent at once instead of blocking their chats for a whole lease.
        self.sole_deliverer = sole_deliverer
        self.limiter = limiter
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.clock = clock
        self.telemetry = telemetry or Telemetry()
        self.worker_id = f"w-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._finishing: list[
            tuple[
                int,
                str,
                str | None,
                PreparedCopy | None,
                tuple[int, int] | None,
                asyncio.Future[None],
            ]
        ] = []
        self._commit_task: asyncio.Task[None] | None = None
        self._need_claim = True
        # Each reason to claim (a wake, the poll, a full claim) is numbered; a claim that began
        # after reason n and took fewer rows than it could covers every reason up to n.
        self._needs = 1
        self._covered = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._renders: set[asyncio.Future[Any]] = set()
        # PostgreSQL: outcomes are first tried as one statement (`_finish_in_one_statement`).
        self._one_statement = db.dialect == "postgresql"
        self._stopping = False
        # Rows this worker claimed and is delivering: what recording a plain outcome needs of
        # a row is here, so it need not be read back (a row is never changed by anyone else
        # while claimed, and deliveries are never deleted).
        self._claimed_rows: dict[int, Delivery] = {}

    def wake(self) -> None:
        """Something was queued or put back: look for work now."""
        self._want_claim()
        self._wake.set()

    def _want_claim(self) -> None:
        self._needs += 1
        self._need_claim = True

    async def run(self) -> None:
        """Deliver until cancelled."""
        await self._recover(at_start=self.sole_deliverer)
        last_recovery = self.clock()
        try:
            while True:
                self._wake.clear()
                # Copies freed by finished ones are claimed with their outcomes
                # (`_commit_finishes`); this claims new work and work that became due.
                if self._need_claim:
                    commit = self._commit_task
                    if commit is not None and not commit.done():
                        # Outcomes being recorded claim in the same transaction: wait for
                        # it, and claim here only if it did not cover this need. Under a
                        # burst (a wake per queued message) a claim of its own per message
                        # was a transaction that mostly found nothing.
                        await asyncio.wait({commit})
                    self._need_claim = False
                    free = self.concurrency - len(self._tasks)
                    if free > 0 and self._needs > self._covered:
                        needs = self._needs
                        claimed = await self._claim(free)
                        if len(claimed) == free:
                            self._want_claim()  # there may be more due rows
                        else:
                            self._covered = max(self._covered, needs)
                        if claimed:
                            self._start(claimed)
                if self.clock() - last_recovery > self.lease / 3:
                    await self._recover()
                    last_recovery = self.clock()
                if self._need_claim:
                    continue
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                except TimeoutError:
                    self._want_claim()  # rows held back by not_before may be due now
        finally:
            await self._stop_in_flight()

    async def _stop_in_flight(self) -> None:
        """Stopping: no new claims; the copies in flight are cancelled (a row not yet posted
        goes back to the queue as it was); outcomes already being recorded are let finish
        (up to STOP_COMMIT_WAIT_S), so a copy Telegram accepted is not resent as ambiguous.
        Repeated until nothing is left: a commit that was under way may have started more."""
        self._stopping = True
        while True:
            in_flight: list[asyncio.Future[Any]] = [*self._tasks, *self._renders]
            for task in in_flight:
                task.cancel()
            commit = self._commit_task  # not cancelled: it records what was posted
            waiting = in_flight + ([commit] if commit is not None and not commit.done() else [])
            if not waiting:
                return
            done, pending = await asyncio.wait(waiting, timeout=STOP_COMMIT_WAIT_S)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: the row's own handling reported it
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the copies in flight (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- internals --------------------------------------------------------------------------

    def _start(self, claimed: list[Delivery], chats: Mapping[int, Chat] | None = None) -> None:
        """Start posting the claimed copies; they are rendered together in one read (the
        copies of one message share its original and translations; `chats`: target chats
        read with the claim). Their tasks exist at once, so they count against the
        concurrency before rendering ends, and the caller does not wait for the read: on
        PostgreSQL the next outcomes' commit overlaps it."""
        render = asyncio.ensure_future(self._render(claimed, chats))
        self._renders.add(render)
        render.add_done_callback(self._renders.discard)
        for row in claimed:
            self._claimed_rows[row.id] = row
            task = asyncio.create_task(self._deliver_rendered(row, render))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _render(
        self, claimed: list[Delivery], chats: Mapping[int, Chat] | None
    ) -> dict[int, PreparedCopy | BaseException | None]:
        try:
            return await self.builder.prepare_many(claimed, chats=chats)
        except Exception as exc:  # noqa: BLE001 - each row retries on its own
            return {row.id: exc for row in claimed}

    async def _deliver_rendered(
        self,
        row: Delivery,
        render: asyncio.Future[dict[int, PreparedCopy | BaseException | None]],
    ) -> None:
        try:
            # Shielded: the rendering is shared by every copy claimed with this one.
            ready = await asyncio.shield(render)
        except asyncio.CancelledError:
            # Stopping: claimed but never started, so back to the queue as it was (not
            # ambiguous: nothing was sent).
            render.cancel()
            with contextlib.suppress(Exception):
                await self.storage.write(lambda uow: uow.outbox.release([row.id]))
            self._claimed_rows.pop(row.id, None)
            raise
        try:
            await self._deliver(row, ready[row.id])
        finally:
            self._claimed_rows.pop(row.id, None)

    async def _claim(self, limit: int) -> list[Delivery]:
        now = self.clock()

        rows = await self.storage.write(
            lambda uow: uow.outbox.claim(worker_id=self.worker_id, limit=limit, now=now)
        )
        at = time.monotonic()
        for row in rows:
            self.telemetry.copy_claimed(row.id, row.message_id, at)
        return rows

    async def _recover(self, *, at_start: bool = False) -> None:
        before = self.clock() if at_start else self.clock() - self.lease
        count = await self.storage.write(
            lambda uow: uow.messages.recover_in_flight(claimed_before=before)
        )
        if count:
            log.warning("%d deliveries were in flight when a worker stopped: resending", count)
            self.wake()

    async def _deliver(self, row: Delivery, rendered: PreparedCopy | BaseException | None) -> None:
        """Post one claimed copy, as rendered by `prepare_many` (None: its message or chat is
        gone; an exception: rendering failed and the row is retried)."""
        prepared: PreparedCopy | None = None
        try:
            if isinstance(rendered, BaseException):
                raise rendered
            prepared = rendered
            if prepared is None:
                await self._finish(row.id, "failed", error="message or chat gone")
                return
            await self._post(prepared)
        except RetryAfter as exc:
            delay = retry_seconds(exc.retry_after)
            if prepared is not None:
                self.limiter.hold(prepared.telegram_chat_id, delay)
                self.telemetry.rate_limited(prepared.telegram_chat_id, delay)
            await self._retry(
                row.id, delay, f"429 retry after {delay:.0f}s", ambiguous=False, counts=False
            )
        except ChatMigrated as exc:
            await self._migrated(row, exc.new_chat_id)
        except TimedOut:
            await self._retry(
                row.id, _backoff(row.attempts), "timed out", ambiguous=True, may_give_up=False
            )
        except Forbidden as exc:
            await self._finish(row.id, "failed", error=f"forbidden: {exc.message}"[:255])
        except BadRequest as exc:
            await self._finish(row.id, "failed", error=f"bad request: {exc.message}"[:255])
        except NetworkError as exc:
            # Telegram unreachable: keep backing off (up to a minute) for as long as it takes;
            # an outage must not turn orders into failed deliveries.
            await self._retry(
                row.id,
                _backoff(row.attempts),
                f"network: {exc.message}"[:255],
                ambiguous=False,
                may_give_up=False,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("delivery %s failed unexpectedly", row.id)
            await self._retry(row.id, _backoff(row.attempts), type(exc).__name__, ambiguous=False)

    async def _post(self, copy: PreparedCopy) -> None:
        chat = copy.telegram_chat_id
        if copy.action in EDIT_ACTIONS:
            await self._edit(copy)
            self.telemetry.copy_posted(copy.delivery_id, copy.message_id, time.monotonic())
            await self._finish(copy.delivery_id, "sent", copy=copy)
            return
        reply = (
            ReplyParameters(message_id=copy.reply_to, allow_sending_without_reply=True)
            if copy.reply_to
            else None
        )
        # The last posted part is recorded in the same transaction that marks the row sent
        # (one commit per single-part copy); earlier parts are recorded before the next send,
        # so a retry never re-posts a part Telegram accepted.
        pending: list[tuple[int, int]] = []

        async def flush() -> None:
            while pending:
                await self._record_part(copy, *pending.pop())

        index = 0
        if copy.kind == "media":
            if 0 not in copy.sent_parts:
                result = await self.bot.copy_message(
                    chat,
                    copy.source_chat_id,
                    copy.source_message_id,
                    caption=copy.caption,
                    parse_mode=ParseMode.HTML,
                    reply_parameters=reply,
                    rate_limit_args=NO_RETRY,
                )
                pending.append((0, result.message_id))
            index = 1
        elif copy.kind in ("location", "venue"):
            if 0 not in copy.sent_parts:
                media = copy.media
                if copy.kind == "venue":
                    sent = await self.bot.send_venue(
                        chat,
                        latitude=media["latitude"],
                        longitude=media["longitude"],
                        title=str(media.get("title", ""))[:256] or "-",
                        address=str(media.get("address", ""))[:256] or "-",
                        reply_parameters=reply,
                        rate_limit_args=NO_RETRY,
                    )
                else:
                    sent = await self.bot.send_location(
                        chat,
                        latitude=media["latitude"],
                        longitude=media["longitude"],
                        reply_parameters=reply,
                        rate_limit_args=NO_RETRY,
                    )
                pending.append((0, sent.message_id))
                reply = ReplyParameters(
                    message_id=sent.message_id, allow_sending_without_reply=True
                )
            index = 1
        for offset, part in enumerate(copy.parts):
            number = index + offset
            if number in copy.sent_parts:
                continue
            await flush()
            message_id = await self._send_text(
                chat,
                part,
                reply,
                _markup(copy) if offset == len(copy.parts) - 1 else None,
            )
            pending.append((number, message_id))
            reply = None  # only the first part replies
        last = pending[0] if pending else None
        self.telemetry.copy_posted(copy.delivery_id, copy.message_id, time.monotonic())
        await self._finish(copy.delivery_id, "sent", copy=copy, last_part=last)

    async def _edit(self, copy: PreparedCopy) -> None:
        """Make an existing copy show the edited text: its parts edited in place, the parts
        the new text needs beyond them posted after them, the parts it no longer needs
        retired. Every change is recorded as it happens, so a retry (429, restart) finds the
        copy as far as it got and carries on from there."""
        chat = copy.telegram_chat_id
        live = dict(zip(copy.edit_parts, copy.edit_ids, strict=True))
        anchor = live[min(live)] if live else None
        wanted = _wanted_parts(copy)
        for number, text in wanted.items():
            telegram_id = live.get(number)
            if text is None:
                continue  # a location or venue: its content is not text
            if telegram_id is None:
                await self._add_part(copy, number, text, anchor)
                continue
            try:
                if copy.kind == "media" and number == 0:
                    await self.bot.edit_message_caption(
                        chat,
                        telegram_id,
                        caption=text,
                        parse_mode=ParseMode.HTML,
                        rate_limit_args=NO_RETRY,
                    )
                else:
                    await self._edit_text(chat, telegram_id, text)
            except BadRequest as exc:
                reason = exc.message.lower()
                if "not found" in reason and (copy.kind != "media" or number > 0):
                    # Someone deleted this part from the chat: post its new text again so
                    # the copy is whole (it lands last; its n/m says where it belongs).
                    await self._record_retired(copy, number, telegram_id, "deleted")
                    await self._add_part(copy, number, text, anchor)
                elif "not modified" not in reason:
                    raise
        for number in sorted(set(live) - set(wanted)):
            await self._retire(copy, number, live[number])

    async def _add_part(
        self, copy: PreparedCopy, number: int, text: str, anchor: int | None
    ) -> None:
        """Post a part an edited copy lacks, after its last one, and record it at once; a
        reply to the copy's first part ties it to the copy if the chat moved on meanwhile."""
        reply = (
            ReplyParameters(message_id=anchor, allow_sending_without_reply=True)
            if anchor is not None
            else None
        )
        new_id = await self._send_text(copy.telegram_chat_id, text, reply, None)
        await self._record_part(copy, number, new_id)

    async def _retire(self, copy: PreparedCopy, part: int, telegram_id: int) -> None:
        """Take a surplus part of an edited copy out of the chat: deleted, or, when Telegram
        refuses (a message older than 48 hours, no rights), edited to a note saying the text
        is above, so no stale part is left reading as current."""
        chat = copy.telegram_chat_id
        how = "deleted"
        try:
            deleted = await self.bot.delete_message(chat, telegram_id, rate_limit_args=NO_RETRY)
        except BadRequest as exc:
            deleted = "not found" in exc.message.lower()  # already gone
        if not deleted:
            how = "marked"
            try:
                await self._edit_text(chat, telegram_id, copy.replaced_text)
            except BadRequest as exc:
                reason = exc.message.lower()
                if "not found" in reason:
                    how = "deleted"  # removed by someone else meanwhile
                elif "not modified" not in reason:
                    raise
        await self._record_retired(copy, part, telegram_id, how)

    async def _record_retired(
        self, copy: PreparedCopy, part: int, telegram_id: int, how: str
    ) -> None:
        """Mark a part retired in the message map and audit it, in one transaction."""
        await self.storage.write(
            lambda uow: self._retired_in(
                uow, copy=copy, part=part, telegram_id=telegram_id, how=how
            )
        )

    async def _retired_in(
        self, uow: UnitOfWork, copy: PreparedCopy, part: int, telegram_id: int, how: str
    ) -> None:
        operation_id = await uow.outbox.retire_part(
            copy.telegram_chat_id, telegram_id, how, copy.target_chat_row
        )
        event = PendingEvent(
            component="outbox",
            event_type=f"delivery.part_{how}",
            actor="daraja",
            outcome="ok",
            operation_id=operation_id,
            payload={
                "delivery_id": copy.delivery_id,
                "message_id": copy.message_id,
                "action": copy.action,
                "target_chat_id": copy.telegram_chat_id,
                "telegram_message_id": telegram_id,
                "part": part,
                "worker": self.worker_id,
            },
        )
        await uow.audit_many([event])

    async def _edit_text(self, chat: int, telegram_id: int, text: str) -> None:
        """editMessageText on a posted part (HTML, no link preview, no retry of our own):
        both an edit's new text and a retired part's note go out through it."""
        await self.bot.edit_message_text(
            text,
            chat,
            telegram_id,
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
            rate_limit_args=NO_RETRY,
        )

    async def _send_text(
        self,
        chat: int,
        text: str,
        reply: ReplyParameters | None,
        markup: InlineKeyboardMarkup | None,
    ) -> int:
        """sendMessage, returning the new message's id. The raw API result is read for the id
        alone: building a full `telegram.Message` from every response was a tenth of the bot's
        work under a burst. Same limiter, same errors as `Bot.send_message`."""
        kwargs: dict[str, Any] = {
            "chat_id": chat,
            "text": text,
            "parse_mode": ParseMode.HTML.value,
            "link_preview_options": {"is_disabled": True},
        }
        if reply is not None:
            kwargs["reply_parameters"] = reply.to_dict()
        if markup is not None:
            kwargs["reply_markup"] = markup.to_dict()
        result = await self.bot.do_api_request(
            "sendMessage", api_kwargs=kwargs, rate_limit_args=NO_RETRY
        )
        return int(result["message_id"])

    def _copy_row(self, copy: PreparedCopy, part: int, telegram_message_id: int) -> Copy:
        return Copy(**self._copy_values(copy, part, telegram_message_id))

    def _copy_values(
        self, copy: PreparedCopy, part: int, telegram_message_id: int
    ) -> dict[str, Any]:
        return {
            "delivery_id": copy.delivery_id,
            "message_id": copy.message_id,
            "target_chat_id": copy.target_chat_row,
            "telegram_chat_id": copy.telegram_chat_id,
            "telegram_message_id": telegram_message_id,
            "part": part,
            "created_at": self.clock(),
        }

    async def _record_part(self, copy: PreparedCopy, part: int, telegram_message_id: int) -> None:
        row = self._copy_row(copy, part, telegram_message_id)
        await self.storage.write(lambda uow: uow.messages.add_copy(row))

    async def _finish(
        self,
        delivery_id: int,
        state: str,
        *,
        error: str | None = None,
        copy: PreparedCopy | None = None,
        last_part: tuple[int, int] | None = None,
    ) -> None:
        """Record a row's outcome. Outcomes finished together share one commit (group commit:
        under load one fsync serves many copies); this returns once the outcome is durable, so
        the chat's next copy is claimed only after it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finishing.append((delivery_id, state, error, copy, last_part, done))
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = asyncio.create_task(self._commit_finishes())
        await done
        if state == "sent" and copy is not None:
            self.telemetry.copy_sent(copy.delivery_id, copy.message_id, time.monotonic())
        if state == "failed":
            self.telemetry.copy_failed(delivery_id, (error or "").split(":")[0])
            log.warning("delivery %s failed: %s", delivery_id, error)

    async def _commit_finishes(self) -> None:
        # Outcomes of copies that finish at about the same time share one commit: while other
        # copies are still in flight, wait a few turns of the event loop for them (none when
        # every copy in flight is already here, so a lone copy is never held back). Under a
        # burst this doubled the copies per commit and took a fifth off each copy's cost.
        for _ in range(FINISH_GATHER_TURNS):
            if len(self._finishing) >= len(self._tasks):
                break
            await asyncio.sleep(0)
        while self._finishing:
            batch, self._finishing = self._finishing[:FINISH_BATCH], self._finishing[FINISH_BATCH:]
            items = [item[:5] for item in batch]
            # The same transaction claims the next copies for the chats these free up (and any
            # other due ones): one write instead of two, and no wait for the worker's next turn.
            free = self.concurrency - len(self._tasks) + len(batch)
            limit = 0 if self._stopping else max(0, free)
            now = self.clock()

            async def work(
                uow: UnitOfWork,
                items: list[FinishItem] = items,
                limit: int = limit,
                now: datetime = now,
            ) -> Claimed:
                posted, changes, events = await self._record_finishes(uow, items)
                # The audit head last: its lock (which every audited write of every process
                # waits for) is held from the claim to the commit only (on PostgreSQL the
                # claim and the lock are one statement, the outcomes and the events another).
                return await uow.finish_claim_audit(
                    posted, changes, events, worker_id=self.worker_id, limit=limit, now=now
                )

            needs = self._needs
            try:
                claimed = await self._finish_in_one_statement(items, limit, now)
                if claimed is None:
                    claimed = await self.storage.write(work)
            except Exception:  # noqa: BLE001 - isolate the bad row: record the rest one by one
                for delivery_id, state, error, copy, last_part, done in batch:
                    one = [(delivery_id, state, error, copy, last_part)]
                    try:
                        await self._record_alone(one)
                    except Exception as exc:  # noqa: BLE001 - reported to its caller
                        if not done.done():
                            done.set_exception(exc)
                    else:
                        if not done.done():
                            done.set_result(None)
                self.wake()  # nothing was claimed with these outcomes
                continue
            if len(claimed.deliveries) < limit:
                # It took every due row it could: the needs raised before it began are met.
                self._covered = max(self._covered, needs)
            for *_, done in batch:
                if not done.done():
                    done.set_result(None)
            if claimed.deliveries:
                at = time.monotonic()
                for row in claimed.deliveries:
                    self.telemetry.copy_claimed(row.id, row.message_id, at)
                # Started here, not handed to the worker loop: one turn of the event loop
                # less between a chat's copies.
                self._start(claimed.deliveries, claimed.chats)

    async def _finish_in_one_statement(
        self, items: list[FinishItem], limit: int, now: datetime
    ) -> Claimed | None:
        """PostgreSQL, every row known: the outcomes, the claim and the events as one
        statement after the head this process last left (no BEGIN, no COMMIT: one round trip
        instead of four); None, nothing written, when that cannot be (the head moved, a row
        must be read first, SQLite)."""
        if not self._one_statement:
            return None
        outcomes = await self._outcomes(None, items)
        if outcomes is None:
            return None
        posted, changes, events = outcomes
        return await self.storage.write_alone(
            lambda uow: uow.finish_claim_audit_at_head(
                posted, changes, events, worker_id=self.worker_id, limit=limit, now=now
            )
        )

    async def _record_alone(self, batch: list[FinishItem]) -> None:
        async def work(uow: UnitOfWork) -> None:
            posted, changes, events = await self._record_finishes(uow, batch)
            await uow.outbox.finish(posted, changes)
            await uow.audit_many(events)

        await self.storage.write(work)

    async def _finishing_rows(
        self, uow: UnitOfWork | None, batch: Sequence[FinishItem]
    ) -> tuple[dict[int, FinishingRow], dict[int, dict[int, int]], dict[int, TargetChat]] | None:
        """The rows being finished, their parts posted before and their target chats: for a
        copy sent whole in one part on its first try from what the claim and the rendering
        returned; read from the database for the rest (one statement, none when all are
        known; without `uow`, None when some are not). Under a burst this is one round trip
        less in every outcome transaction."""
        rows: dict[int, FinishingRow] = {}
        parts: dict[int, dict[int, int]] = {}
        chats: dict[int, TargetChat] = {}
        unknown: list[int] = []
        for delivery_id, state, _error, copy, last_part in batch:
            row = self._claimed_rows.get(delivery_id)
            if (
                row is not None
                and state == "sent"
                and copy is not None
                and copy.operation_id is not None
                and last_part is not None
                and last_part[0] == 0
                and not copy.sent_parts
                and copy.action not in EDIT_ACTIONS
            ):
                rows[delivery_id] = FinishingRow(
                    row.id,
                    row.message_id,
                    row.revision,
                    row.action,
                    row.target_chat_id,
                    row.target_language,
                    row.attempts,
                    row.ambiguous,
                )
                parts[delivery_id] = {}
                chats[row.target_chat_id] = TargetChat(
                    row.target_chat_id, copy.operation_id, copy.telegram_chat_id
                )
            else:
                unknown.append(delivery_id)
        if unknown:
            if uow is None:
                return None
            read_rows, read_parts, read_chats = await uow.outbox.finishing(unknown)
            rows.update(read_rows)
            parts.update(read_parts)
            chats.update(read_chats)
        return rows, parts, chats

    async def _record_finishes(self, uow: UnitOfWork, batch: Sequence[FinishItem]) -> Outcomes:
        """What recording several rows' outcomes writes: the posted parts to add to the message
        map, the rows' new states and the audit events, for the caller to write in one
        transaction. What the rows were is read in one statement (none when known)."""
        found = await self._outcomes(uow, batch)
        assert found is not None
        return found

    async def _outcomes(
        self, uow: UnitOfWork | None, batch: Sequence[FinishItem]
    ) -> Outcomes | None:
        """`_record_finishes`; without `uow`, None when some row would have to be read."""
        known = await self._finishing_rows(uow, batch)
        if known is None:
            return None
        rows, parts, chats = known
        now = self.clock()
        posted: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        events: list[PendingEvent] = []
        for delivery_id, state, error, copy, last_part in batch:
            row = rows.get(delivery_id)
            if row is None:
                continue
            if copy is not None and last_part is not None:
                posted.append(self._copy_values(copy, *last_part))
                parts[delivery_id][last_part[0]] = last_part[1]
            telegram_ids = [parts[delivery_id][p] for p in sorted(parts[delivery_id])]
            changes.append(
                {
                    "b_id": delivery_id,
                    "state": state,
                    "last_error": error,
                    "claimed_by": None,
                    "claimed_at": None,
                    "sent_at": now if state == "sent" else None,
                    "telegram_message_ids": telegram_ids,
                }
            )
            chat = chats.get(row.target_chat_id)
            payload: dict[str, Any] = {
                "delivery_id": delivery_id,
                "message_id": row.message_id,
                "revision": row.revision,
                "action": row.action,
                "target_chat_id": chat.telegram_chat_id if chat else None,
                "languages": row.target_language,
                "telegram_message_ids": telegram_ids,
                "attempts": row.attempts,
                "ambiguous": row.ambiguous,
                "error": error,
                "worker": self.worker_id,
            }
            if state == "sent" and copy is not None and copy.action in EDIT_ACTIONS:
                # An edit's own ids are the parts it added; these are the ones it rewrote
                # (the parts it retired have events of their own).
                wanted = _wanted_parts(copy)
                payload["edited_message_ids"] = [
                    telegram_id
                    for part, telegram_id in zip(copy.edit_parts, copy.edit_ids, strict=True)
                    if wanted.get(part) is not None
                ]
            events.append(
                PendingEvent(
                    component="outbox",
                    event_type=f"delivery.{state}",
                    actor="daraja",
                    outcome="ok" if state == "sent" else "failed",
                    operation_id=chat.operation_id if chat else None,
                    payload=payload,
                )
            )
        return posted, changes, events

    async def _retry(
        self,
        delivery_id: int,
        delay: float,
        error: str,
        *,
        ambiguous: bool,
        counts: bool = True,
        may_give_up: bool = True,
    ) -> None:
        """Put a row back in the queue after `delay`; give up after MAX_ATTEMPTS real failures
        (429s are Telegram pacing us, not failures, and never exhaust a row)."""
        async with self.storage() as uow:
            row = await uow.messages.delivery(delivery_id)
            if row is None:
                return
            row.ambiguous = row.ambiguous or ambiguous
            if not counts:
                row.attempts = max(0, row.attempts - 1)
            exhausted = counts and may_give_up and row.attempts >= MAX_ATTEMPTS
            if not exhausted:
                row.state = "pending"
                row.claimed_by = None
                row.claimed_at = None
                row.not_before = self.clock() + timedelta(seconds=delay)
                row.last_error = error
        if exhausted:
            await self._finish(delivery_id, "failed", error=f"gave up: {error}"[:255])
            return
        log.info("delivery %s retried in %.1fs: %s", delivery_id, delay, error.split(":")[0])
        self.wake()

    async def _migrated(self, row: Delivery, new_chat_id: int) -> None:
        async with self.storage() as uow:
            chat = await uow.messages.chat(row.target_chat_id)
            if chat is not None:
                await uow.chats.migrate(chat.telegram_chat_id, new_chat_id)
        await self._retry(row.id, 0.0, "chat migrated to a supergroup", ambiguous=False)


def _wanted_parts(copy: PreparedCopy) -> dict[int, str | None]:
    """The parts an edited copy is made of, by part number, and the text each shows (None:
    not text, a location or venue keeps its first message as it is). Media: part 0 is the
    caption, overflow text follows; location and venue: part 0 is the pin, text follows."""
    wanted: dict[int, str | None] = {}
    first = 0
    if copy.kind == "media":
        wanted[0] = copy.caption
        first = 1
    elif copy.kind in ("location", "venue"):
        wanted[0] = None
        first = 1
    for offset, part in enumerate(copy.parts):
        wanted[first + offset] = part
    return wanted


def _markup(copy: PreparedCopy) -> InlineKeyboardMarkup | None:
    """Issue 7: inline buttons (FLASH acknowledge) go under a copy's last part."""
    if not copy.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data)] for label, data in copy.buttons]
    )


def _backoff(attempts: int) -> float:
    return float(min(60, 2 ** max(0, attempts - 1)))
