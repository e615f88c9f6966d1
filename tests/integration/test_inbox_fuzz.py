"""The inbox against hostile updates on a real database: 10,000 malformed updates of every kind
that once stopped the bot go through the poller's own path (a getUpdates answer read by the
long-polling transport, triage, commit, dispatch); each is kept as `failed` with its reason, and
the update after the storm is processed. Stored rows that cannot be routed never stop a start.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.delivery.http import UpdatesRequest
from bot.delivery.inbox import InboxProcessor, Poller
from storage.db import Database
from storage.models import InboxUpdate
from tests.support.fuzz import ALL_KINDS, corpus

SEED = 20261203
STORM = 10_000
FIRST_ID = 50_000


class FakeApp:
    """Stands in for the PTB Application: records the updates the inbox hands it."""

    bot = None

    def __init__(self) -> None:
        self.processed: list[int] = []

    async def process_update(self, update: Any) -> None:
        self.processed.append(update.update_id)


class FakeBot:
    """Answers getUpdates with prepared batches (as the Bot API's raw JSON), then waits."""

    def __init__(self, batches: list[str]) -> None:
        self._batches: Iterator[str] = iter(batches)
        self.offsets: list[int | None] = []
        self.exhausted = asyncio.Event()

    async def _post(self, endpoint: str, data: dict[str, Any], **_: Any) -> Any:
        assert endpoint == "getUpdates"
        self.offsets.append(data.get("offset"))
        body = next(self._batches, None)
        if body is None:
            self.exhausted.set()
            await asyncio.Event().wait()
        assert body is not None
        return UpdatesRequest.parse_json_payload(body.encode())["result"]


def _good(update_id: int, chat_id: int = -100123) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "supergroup", "title": "PNH"},
            "from": {"id": 42, "is_bot": False, "first_name": "Jean"},
            "text": "Patrol at 14:30",
        },
    }


async def _rows(db: Database) -> dict[int, tuple[str, str | None]]:
    async with db.transaction() as s:
        result = await s.execute(
            select(InboxUpdate.update_id, InboxUpdate.state, InboxUpdate.error)
        )
        return {int(u): (str(st), e) for u, st, e in result.all()}


async def test_ten_thousand_malformed_updates_fail_one_by_one_and_the_next_is_relayed(
    db: Database,
) -> None:
    cases = corpus(SEED, STORM, kinds=ALL_KINDS)
    texts = [c.with_id(FIRST_ID + i) for i, c in enumerate(cases)]
    good_id = FIRST_ID + STORM
    texts.append(json.dumps(_good(good_id)))
    batches = [
        '{"ok":true,"result":[' + ",".join(texts[i : i + 100]) + "]}"
        for i in range(0, len(texts), 100)
    ]
    app = FakeApp()
    inbox = InboxProcessor(db, app)
    bot = FakeBot(batches)
    poller = Poller(bot, inbox, timeout=0)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(bot.exhausted.wait(), 120)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await inbox.drain()

    rows = await _rows(db)
    # The storm did not stop the poller: every batch was fetched, and all were confirmed.
    assert len(bot.offsets) == len(batches) + 1
    assert (bot.offsets[-1] or 0) > good_id
    assert app.processed == [good_id]
    assert rows[good_id] == ("done", None)
    wrong: Counter[tuple[str, str]] = Counter()
    for i, case in enumerate(cases):
        row = rows.get(FIRST_ID + i)
        if case.stage is None:  # no usable update_id: nothing to key a row by
            if row is not None:
                wrong[(case.kind, "stored")] += 1
            continue
        if row is None:
            wrong[(case.kind, "missing")] += 1
        elif row[0] != "failed" or not (row[1] or "").startswith(case.stage + ": "):
            wrong[(case.kind, f"{row[0]} {row[1]}")] += 1
    assert wrong == Counter()
    kinds = Counter(c.kind for c in cases)
    assert set(kinds) == set(ALL_KINDS)
    assert sum(1 for state, _ in rows.values() if state == "failed") == sum(
        n for kind, n in kinds.items() if kind != "update_id_out_of_range"
    )
    assert inbox.failed == sum(1 for state, _ in rows.values() if state == "failed")
    assert poller.rejected == kinds["update_id_out_of_range"]


async def test_stored_updates_that_cannot_be_routed_do_not_stop_a_start(db: Database) -> None:
    # Rows committed by an older version, as they are in the database of a bot that crashed on
    # them at every start: a chat id that is an object, payloads that are not JSON objects.
    unroutable = _good(1)
    unroutable["message"]["chat"]["id"] = {}
    async with db.transaction() as s:
        s.add_all(
            [
                InboxUpdate(update_id=1, payload=json.dumps(unroutable)),
                InboxUpdate(update_id=2, payload="[1, 2]"),
                InboxUpdate(update_id=3, payload="{not json"),
                InboxUpdate(update_id=4, payload=json.dumps(_good(4))),
            ]
        )
    app = FakeApp()
    inbox = InboxProcessor(db, app)
    assert await inbox.resume() == 4
    await inbox.drain()
    assert app.processed == [4]
    rows = await _rows(db)
    assert rows[4] == ("done", None)
    assert rows[1][0] == rows[2][0] == rows[3][0] == "failed"
    assert (rows[1][1] or "").startswith("unroutable: ValueError: chat id is a dict")
    assert (rows[2][1] or "").startswith("unreadable: TypeError")
    assert (rows[3][1] or "").startswith("unreadable: JSONDecodeError")
    # A second start finds nothing left to resume.
    assert await InboxProcessor(db, FakeApp()).resume() == 0


async def test_an_update_whose_handler_raises_is_marked_failed_with_the_error_kind(
    db: Database,
) -> None:
    from bot.devtools.sandbox import DEFAULT_TOKEN, Sandbox

    async def broken(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise LookupError("no such unit")

    async def quiet(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The bot's own error handler (logs, apologises); here it does nothing."""

    async with Sandbox() as sandbox:
        app = (
            ApplicationBuilder()
            .token(DEFAULT_TOKEN)
            .base_url(sandbox.bot_base_url)
            .updater(None)
            .build()
        )
        app.add_handler(MessageHandler(filters.TEXT, broken))
        app.add_error_handler(quiet)
        await app.initialize()
        try:
            inbox = InboxProcessor(db, app)
            fresh = await inbox.store([_good(7), _good(8)])
            for update_id in fresh:
                inbox.dispatch(update_id, _good(update_id))
            await inbox.drain()
        finally:
            await app.shutdown()
    rows = await _rows(db)
    assert rows[7] == rows[8] == ("failed", "handler: LookupError")


async def test_an_update_the_database_refuses_spoils_nothing_else(db: Database) -> None:
    from bot.delivery.raw_updates import RawUpdate, triage

    good, later = triage(_good(31)), triage(_good(33))
    assert isinstance(good, RawUpdate)
    assert isinstance(later, RawUpdate)
    # A value no UTF-8 database column takes (triage would have caught this one; whatever
    # else a database refuses takes the same way).
    poison = RawUpdate(32, '{"update_id": 32, "text": "\ud800"}', {"update_id": 32})
    inbox = InboxProcessor(db, FakeApp())
    assert await inbox.store([good, poison, later]) == [31, 33]
    rows = await _rows(db)
    assert rows[31] == rows[33] == ("new", None)
    assert rows[32][0] == "failed"
    assert (rows[32][1] or "").startswith("unstorable: ")


async def test_the_poller_outlives_any_getupdates_failure(db: Database) -> None:
    from telegram.error import NetworkError, TelegramError

    class FlakyBot(FakeBot):
        """Fails in every way getUpdates can, then answers."""

        def __init__(self) -> None:
            super().__init__(['{"ok":true,"result":[' + json.dumps(_good(41)) + "]}"])
            self.failures: list[Exception] = [
                NetworkError("connection refused"),
                TelegramError("Invalid server response (not JSON)"),
                RuntimeError("anything else"),
            ]

        async def _post(self, endpoint: str, data: dict[str, Any], **kw: Any) -> Any:
            if self.failures:
                raise self.failures.pop(0)
            return await super()._post(endpoint, data, **kw)

    app = FakeApp()
    inbox = InboxProcessor(db, app)
    bot = FlakyBot()
    poller = Poller(bot, inbox, timeout=0, retry_max=0.01)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(bot.exhausted.wait(), 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await inbox.drain()
    assert bot.failures == []
    assert app.processed == [41]
