"""Edits of a copy split over several Telegram messages, on a real database with a small fake
Bot API that keeps each chat's messages: the chat ends up showing exactly the edited text,
with no stale part, and the message map and the audit log say what happened to each part."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from telegram.error import BadRequest, RetryAfter

from bot.delivery.outbox import OutboxWorker
from bot.delivery.ratelimit import RateLimiter
from bot.i18n import load_i18n
from bot.services.copies import CopyBuilder
from storage.audit import AuditChain
from storage.db import Database
from storage.messages import MessageRepo
from storage.models import AuditEvent, Copy, Delivery, Message, TranslationRow
from tests.support.db_seed import seed_operation
from tests.support.fakes import Clock

LONG = " ".join(f"Patrol {i} reached Kenscoff at 14:30 and holds the road." for i in range(240))
SHORT = "Roger."


class ChatBot:
    """The Bot API calls the outbox makes, over an in-memory chat: what members would see."""

    def __init__(self) -> None:
        self.chats: dict[int, dict[int, str]] = {}
        self.next_id = 100
        self.refuse_deletes = False
        self.sends = 0
        self.throttle_send = 0  # the number of the send answered once with a 429
        self.calls: list[str] = []

    def visible(self, chat_id: int) -> list[str]:
        """The chat's messages, oldest first."""
        return [text for _, text in sorted(self.chats.get(chat_id, {}).items())]

    async def do_api_request(
        self, endpoint: str, api_kwargs: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        assert endpoint == "sendMessage", endpoint
        self.calls.append("send")
        if self.sends + 1 == self.throttle_send:
            self.throttle_send = 0
            raise RetryAfter(3)
        self.sends += 1
        args = api_kwargs or {}
        self.next_id += 1
        self.chats.setdefault(args["chat_id"], {})[self.next_id] = args["text"]
        return {"message_id": self.next_id, "chat": {"id": args["chat_id"]}}

    async def edit_message_text(self, text: str, chat_id: int, message_id: int, **_: Any) -> Any:
        self.calls.append("edit")
        chat = self.chats.get(chat_id, {})
        if message_id not in chat:
            raise BadRequest("Message to edit not found")
        if chat[message_id] == text:
            raise BadRequest("Message is not modified")
        chat[message_id] = text
        return True

    async def delete_message(self, chat_id: int, message_id: int, **_: Any) -> bool:
        self.calls.append("delete")
        chat = self.chats.get(chat_id, {})
        if message_id not in chat:
            raise BadRequest("Message to delete not found")
        if self.refuse_deletes:
            raise BadRequest("Message can't be deleted")
        del chat[message_id]
        return True


class World:
    """One message from a Kreyòl group, relayed to an English group, then edited."""

    def __init__(self, db: Database, bot: ChatBot) -> None:
        self.db = db
        self.bot = bot
        self.clock = Clock()
        self.worker = OutboxWorker(
            db,
            AuditChain(),
            bot,  # type: ignore[arg-type]
            CopyBuilder(db, load_i18n()),
            RateLimiter(global_per_s=0, chat_per_s=0, group_per_min=0),
            clock=self.clock,
        )
        self.message_id = 0
        self.chat_row = 0
        self.telegram_chat = 0
        self.revision = -1

    async def setup(self) -> None:
        async with self.db.transaction() as s:
            seeded = await seed_operation(s, chats=2)
        self.message_id, self.chat_row = seeded.message_id, seeded.chat_ids[1]
        async with self.db.reader() as s:
            chat = await MessageRepo(s).chat(self.chat_row)
            assert chat is not None
            self.telegram_chat = chat.telegram_chat_id

    async def write(self, english: str) -> None:
        """The author writes (first time) or edits (later): queue the copy of that text."""
        self.revision += 1
        async with self.db.transaction() as s:
            message = await s.get(Message, self.message_id)
            assert message is not None
            message.revision = self.revision
            message.text = f"(ht) {english[:40]}"
            s.add(
                TranslationRow(
                    message_id=self.message_id,
                    revision=self.revision,
                    target_language="en",
                    text=english,
                    route="direct",
                    models=["fixture_ht_en"],
                    score=0.9,
                    flags=[],
                )
            )
            s.add(
                Delivery(
                    message_id=self.message_id,
                    revision=self.revision,
                    target_chat_id=self.chat_row,
                    action="send" if self.revision == 0 else "edit",
                    target_language="en",
                    state="pending",
                    attempts=0,
                )
            )

    async def deliver(self) -> None:
        """Run the worker until nothing is due (retries included)."""
        for _ in range(10):
            rows = await self.worker._claim(8)
            if not rows:
                return
            ready = await self.worker.builder.prepare_many(rows)
            for row in rows:
                await self.worker._deliver(row, ready[row.id])
            self.clock.now += timedelta(seconds=5)

    def chat(self) -> list[str]:
        return self.bot.visible(self.telegram_chat)

    async def live_parts(self) -> list[int]:
        async with self.db.reader() as s:
            copies = await MessageRepo(s).copies_of(self.message_id, self.chat_row)
        return [c.telegram_message_id for c in copies]

    async def events(self, prefix: str) -> list[dict[str, Any]]:
        async with self.db.reader() as s:
            rows = await s.execute(
                select(AuditEvent.event_type, AuditEvent.payload).order_by(AuditEvent.seq)
            )
        return [dict(json.loads(p), event=e) for e, p in rows if e.startswith(prefix)]


def _translated(parts: list[str]) -> str:
    """The translated text a chat's copy shows, parts joined (headers and originals aside)."""
    lines = []
    for part in parts:
        for line in part.split("\n")[1:]:
            if line.startswith("<blockquote") or line.startswith("<i>"):
                break
            lines.append(line)
    return " ".join(" ".join(lines).split())


async def test_long_edited_to_short_leaves_one_part_and_deletes_the_rest(db: Database) -> None:
    world = World(db, ChatBot())
    await world.setup()
    await world.write(LONG)
    await world.deliver()
    before = world.chat()
    assert len(before) >= 4
    assert _translated(before) == LONG
    first_ids = await world.live_parts()

    await world.write(SHORT)
    await world.deliver()

    [only] = world.chat()
    assert _translated([only]) == SHORT
    assert await world.live_parts() == first_ids[:1]  # edited in place
    deleted = await world.events("delivery.part_")
    assert [e["event"] for e in deleted] == ["delivery.part_deleted"] * (len(before) - 1)
    assert [e["telegram_message_id"] for e in deleted] == first_ids[1:]
    async with db.reader() as s:
        retired = (await s.execute(select(Copy.retired).order_by(Copy.part))).scalars().all()
    assert retired == [None] + ["deleted"] * (len(before) - 1)
    [edit] = [e for e in await world.events("delivery.sent") if e["action"] == "edit"]
    assert edit["edited_message_ids"] == first_ids[:1]


async def test_short_edited_to_long_posts_the_missing_parts(db: Database) -> None:
    world = World(db, ChatBot())
    await world.setup()
    await world.write(SHORT)
    await world.deliver()
    [first] = await world.live_parts()

    await world.write(LONG)
    await world.deliver()

    parts = world.chat()
    assert len(parts) >= 4
    assert _translated(parts) == LONG  # nothing dropped past the first part
    live = await world.live_parts()
    assert live[0] == first
    assert len(live) == len(parts)
    [edit] = [e for e in await world.events("delivery.sent") if e["action"] == "edit"]
    assert edit["telegram_message_ids"] == live[1:]  # the parts the edit added
    assert edit["edited_message_ids"] == [first]

    # And back: the parts the first edit added are retired by the next one.
    await world.write(SHORT)
    await world.deliver()
    assert _translated(world.chat()) == SHORT
    assert await world.live_parts() == [first]


async def test_parts_telegram_will_not_delete_are_marked_as_replaced(db: Database) -> None:
    bot = ChatBot()
    world = World(db, bot)
    await world.setup()
    await world.write(LONG)
    await world.deliver()
    count = len(world.chat())
    bot.refuse_deletes = True  # e.g. the copy is older than 48 hours

    await world.write(SHORT)
    await world.deliver()

    first, *rest = world.chat()
    assert _translated([first]) == SHORT
    note = load_i18n().t("relay.part_replaced", "en")
    assert len(rest) == count - 1
    assert all(note in part and "PNH-1" in part for part in rest)  # whose, and that it moved
    assert not any("Patrol" in part for part in rest)
    marked = await world.events("delivery.part_")
    assert [e["event"] for e in marked] == ["delivery.part_marked"] * (count - 1)

    # A later edit does not touch the marked parts again: they are no longer part of the copy.
    bot.calls.clear()
    await world.write("Stand by.")
    await world.deliver()
    assert bot.calls == ["edit"]


async def test_a_429_halfway_through_an_edit_resumes_without_repeating_a_part(
    db: Database,
) -> None:
    bot = ChatBot()
    world = World(db, bot)
    await world.setup()
    await world.write(SHORT)
    await world.deliver()
    await world.write(LONG)
    bot.throttle_send = bot.sends + 2  # the second part the edit adds is refused once
    await world.deliver()
    parts = world.chat()
    assert _translated(parts) == LONG  # each part once, in order
    assert len(parts) == len(await world.live_parts())
    assert bot.calls.count("send") == len(parts) + 1  # the refused send was the only repeat


async def test_a_part_someone_deleted_is_posted_again_by_the_next_edit(db: Database) -> None:
    bot = ChatBot()
    world = World(db, bot)
    await world.setup()
    await world.write(LONG)
    await world.deliver()
    before = await world.live_parts()
    del bot.chats[world.telegram_chat][before[1]]  # a group admin removed part 2

    await world.write(LONG.replace("Patrol", "Squad"))
    await world.deliver()

    parts = world.chat()
    assert len(parts) == len(before)
    assert sum(_translated([p]).count("Squad") for p in parts) == 240
    assert "Patrol" not in " ".join(_translated([p]) for p in parts)
    live = await world.live_parts()
    assert before[1] not in live
    assert len(live) == len(before)
