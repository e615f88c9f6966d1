"""Repository of relayed messages: originals, translations, the outbox and the message map."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, make_transient

from storage.errors import MESSAGE_SOURCE, duplicate_of
from storage.models import Chat, Copy, Delivery, Message, Person, TranslationRow, Unit


class MessageContext(NamedTuple):
    """An original with what every copy of its current revision shares (`contexts`)."""

    message: Message
    chat: Chat
    author: Person | None
    unit: Unit | None
    translations: dict[str, TranslationRow]


# Synthetic ids a filed message tries before giving up (each loss means another writer won).
SYNTHETIC_ID_TRIES = 8

# Chats with their units: a copy's rendering looks up a chat's unit right after (by id, in the
# session's identity map), one query per chat otherwise.
_CHATS_BY_ID = (
    select(Chat, Unit)
    .outerjoin(Unit, Unit.id == Chat.unit_id)
    .where(Chat.id.in_(bindparam("ids", expanding=True)))
)
# Originals with what every copy's header names: the chat they were written in, the author (when
# known) and the unit the header names (the author's own, else the chat's); a row per
# translation of the current revision (one with none when it has none).
_CONTEXTS = (
    select(Message, Chat, Person, Unit, TranslationRow)
    .join(Chat, Chat.id == Message.chat_id)
    .outerjoin(Person, Person.telegram_user_id == Message.author_user_id)
    .outerjoin(Unit, Unit.id == func.coalesce(Person.unit_id, Chat.unit_id))
    .outerjoin(
        TranslationRow,
        and_(TranslationRow.message_id == Message.id, TranslationRow.revision == Message.revision),
    )
    .where(Message.id.in_(bindparam("ids", expanding=True)))
)
# The deliveries whose parts make up one copy in a chat: the first post and the edits of it
# (an edit whose copy never arrived posts it anew, and later edits follow that one).
COPY_FAMILIES: dict[str, tuple[str, ...]] = {
    "send": ("send", "edit"),
    "edit": ("send", "edit"),
    "annotate": ("annotate", "reannotate"),
    "reannotate": ("annotate", "reannotate"),
    "backcheck": ("backcheck", "rebackcheck"),
    "rebackcheck": ("backcheck", "rebackcheck"),
}


class MessageRepo:
    """Intent-named queries over messages, translations, deliveries and copies."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Rows loaded beside those asked for (a chat's unit), referenced here so that the
        # session's identity map (weak references) still has them when they are looked up.
        self._held: list[Any] = []

    async def by_telegram(self, chat_id: int, telegram_message_id: int) -> Message | None:
        """The original recorded for (enrolled chat row id, Telegram message id), if any."""
        result = await self.session.execute(
            select(Message).where(
                Message.chat_id == chat_id, Message.telegram_message_id == telegram_message_id
            )
        )
        return result.scalar_one_or_none()

    async def add_message(self, message: Message) -> Message:
        """Record an original (`Duplicate` on MESSAGE_SOURCE, at commit, for a replayed one)."""
        self.session.add(message)
        await self.session.flush()
        return message

    async def add_filed_message(self, message: Message) -> Message:
        """Record an original that has no Telegram message of its own in its filing chat (a
        FLASH typed privately) under a synthetic negative id, unique within that chat.

        Two such messages recorded at once both read the same lowest id: on PostgreSQL the
        second insert waits for the first transaction and then hits MESSAGE_SOURCE. Each try
        runs in a savepoint, so the loser rolls back only its insert, reads the id the winner
        committed, and takes the next one. (SQLite's writers take turns: it never retries.)"""
        lost: IntegrityError | None = None
        for _attempt in range(SYNTHETIC_ID_TRIES):
            lowest = (
                await self.session.execute(
                    select(func.min(Message.telegram_message_id)).where(
                        Message.chat_id == message.chat_id
                    )
                )
            ).scalar_one_or_none()
            message.telegram_message_id = min(int(lowest or 0), 0) - 1
            try:
                async with self.session.begin_nested():
                    self.session.add(message)
                    await self.session.flush()
            except IntegrityError as exc:
                if getattr(duplicate_of(exc), "constraint", None) != MESSAGE_SOURCE:
                    raise
                # The savepoint's rollback expunged the pending row: add it afresh.
                make_transient(message)
                lost = exc
                continue
            return message
        assert lost is not None
        raise lost  # not a replay: the caller must not take it for one

    async def contexts(self, message_ids: Iterable[int]) -> list[MessageContext]:
        """Originals with their chat, their author (None: not known), the unit a copy's header
        names (the author's, else the chat's) and the translations of their current revision
        by target language, in one query."""
        ids = sorted(set(message_ids))
        if not ids:
            return []
        found: dict[int, MessageContext] = {}
        for message, chat, person, unit, row in await self.session.execute(
            _CONTEXTS, {"ids": ids}
        ):
            context = found.get(message.id)
            if context is None:
                context = found[message.id] = MessageContext(message, chat, person, unit, {})
            if row is not None:
                context.translations[row.target_language] = row
        return list(found.values())

    async def translations(self, message_id: int, revision: int) -> Sequence[TranslationRow]:
        """Every translation of one revision of a message."""
        result = await self.session.execute(
            select(TranslationRow).where(
                TranslationRow.message_id == message_id, TranslationRow.revision == revision
            )
        )
        return result.scalars().all()

    async def copy_at(self, telegram_chat_id: int, telegram_message_id: int) -> Copy | None:
        """The copy the bot posted as this Telegram message, if it is one."""
        result = await self.session.execute(
            select(Copy).where(
                Copy.telegram_chat_id == telegram_chat_id,
                Copy.telegram_message_id == telegram_message_id,
            )
        )
        return result.scalar_one_or_none()

    async def copies_of(
        self, message_id: int, target_chat_id: int, *, action: str | None = None
    ) -> Sequence[Copy]:
        """The Telegram messages that carry a message's copy in one chat now, by part: the
        parts its first delivery posted and those its edits added, less the parts edits
        retired. With `action`, the copy that began with a delivery of that kind (the source
        chat can hold both an in-place annotation and a back-translation of the same
        message)."""
        where = [Copy.message_id == message_id, Copy.target_chat_id == target_chat_id]
        if action is not None:
            where.append(Delivery.action == action)
        first = await self.session.execute(
            select(Delivery.action)
            .join(Copy, Copy.delivery_id == Delivery.id)
            .where(*where)
            .order_by(Copy.delivery_id)
            .limit(1)
        )
        first_action = first.scalar_one_or_none()
        if first_action is None:
            return []
        result = await self.session.execute(
            select(Copy)
            .join(Delivery, Copy.delivery_id == Delivery.id)
            .where(
                Copy.message_id == message_id,
                Copy.target_chat_id == target_chat_id,
                Copy.retired.is_(None),
                Delivery.action.in_(COPY_FAMILIES.get(first_action, (first_action,))),
            )
            .order_by(Copy.part, Copy.id)
        )
        return result.scalars().all()

    async def copies_for_delivery(self, delivery_id: int) -> Sequence[Copy]:
        """The parts already posted for one delivery."""
        result = await self.session.execute(
            select(Copy).where(Copy.delivery_id == delivery_id).order_by(Copy.part)
        )
        return result.scalars().all()

    async def chats_sent_to(self, message_id: int) -> Sequence[int]:
        """Ids of the chats a message was (or is being) copied to, in-place annotations aside."""
        result = await self.session.execute(
            select(Delivery.target_chat_id)
            .where(Delivery.message_id == message_id, Delivery.action == "send")
            .distinct()
        )
        return result.scalars().all()

    async def add_copy(self, copy: Copy) -> None:
        """Remember a posted copy."""
        self.session.add(copy)
        await self.session.flush()

    async def delivery(self, delivery_id: int) -> Delivery | None:
        """One outbox row."""
        return await self.session.get(Delivery, delivery_id)

    async def message(self, message_id: int) -> Message | None:
        """One original."""
        return await self.session.get(Message, message_id)

    async def chat(self, chat_id: int) -> Chat | None:
        """One enrolled chat row."""
        return await self.session.get(Chat, chat_id)

    async def chats(self, chat_ids: Iterable[int]) -> Sequence[Chat]:
        """Several enrolled chat rows, in one query (loaded into the session with their
        units, so a lookup of a chat's unit by id in this session runs no query)."""
        ids = sorted(set(chat_ids))
        if not ids:
            return []
        rows = (await self.session.execute(_CHATS_BY_ID, {"ids": ids})).all()
        self._held.extend(unit for _, unit in rows if unit is not None)
        return [chat for chat, _ in rows]

    async def recover_in_flight(self, *, claimed_before: datetime) -> int:
        """Rows left `sending` past their lease (a crashed worker) go back to the queue, marked
        ambiguous: the copy may already have reached Telegram."""
        result = await self.session.execute(
            select(Delivery).where(
                Delivery.state == "sending",
                (Delivery.claimed_at.is_(None)) | (Delivery.claimed_at < claimed_before),
            )
        )
        rows = result.scalars().all()
        for row in rows:
            row.state = "pending"
            row.ambiguous = True
            row.last_error = "in flight when its worker stopped"
            row.claimed_by = None
            row.claimed_at = None
        await self.session.flush()
        return len(rows)

    async def untranscribed_voice(
        self, since: datetime
    ) -> Sequence[tuple[Message, int, str, str | None]]:
        """Voice notes since `since` in active chats whose transcript was never recorded, with
        their chat's Telegram id and languages and the author's language, oldest first."""
        transcript = aliased(Message)
        rows = (
            await self.session.execute(
                select(Message, Chat.telegram_chat_id, Chat.languages, Person.language)
                .join(Chat, Chat.id == Message.chat_id)
                .outerjoin(Person, Person.telegram_user_id == Message.author_user_id)
                .where(
                    Message.kind == "voice",
                    Message.created_at >= since,
                    Chat.active.is_(True),
                    ~exists().where(
                        and_(
                            transcript.chat_id == Message.chat_id,
                            # A transcript is recorded under the note's id, negated.
                            transcript.telegram_message_id == -Message.telegram_message_id,
                        )
                    ),
                )
                .order_by(Message.id)
            )
        ).all()
        return [(m, chat_id, languages, lang) for m, chat_id, languages, lang in rows]


async def first_copies(s: AsyncSession, *, after: int = 0) -> Sequence[tuple[Any, ...]]:
    """Every first part of a relay copy the bot posted for messages with ids above `after`,
    with its original's chat and Telegram id (message, target chat, copy's Telegram id, source
    chat, source Telegram id): what a bench counts delivered, duplicated and out-of-order
    copies from. A back-check posted to the author's own group is not a relay copy."""
    rows = await s.execute(
        select(
            Copy.message_id,
            Copy.target_chat_id,
            Copy.telegram_message_id,
            Message.chat_id,
            Message.telegram_message_id,
        )
        .join(Message, Message.id == Copy.message_id)
        .join(Delivery, Delivery.id == Copy.delivery_id)
        .where(Copy.part == 0, Copy.message_id > after, Delivery.action == "send")
    )
    return [tuple(row) for row in rows.all()]


async def last_message_id(s: AsyncSession) -> int:
    """The highest message id recorded so far (0 if none)."""
    return int((await s.execute(select(func.max(Message.id)))).scalar() or 0)


async def load_history(
    s: AsyncSession,
    messages: Sequence[dict[str, Any]],
    translations: Sequence[dict[str, Any]],
    deliveries: Sequence[dict[str, Any]],
) -> None:
    """Insert ready-made message, translation and delivery rows as they are (no audit events):
    how a bench seeds a week of history in seconds."""
    await s.execute(insert(Message), list(messages))
    await s.execute(insert(TranslationRow), list(translations))
    await s.execute(insert(Delivery), list(deliveries))
