"""Reading the message log: messages with their chat, operation and unit, filtered and
keyset-paged, and every translation with the deliveries that carried it. The auditor's
`/log` and `/search`, the CLI export's scope and the web console read through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, Delivery, Message, Operation, TranslationRow, Unit
from storage.status_repo import Flash, FlashAck

# One row of the log: (Message, Chat, Operation, Unit or None).
LogRow = tuple[Message, Chat, Operation, Unit | None]


@dataclass(frozen=True)
class LogRows:
    """Which messages to read (every field optional) and in which order."""

    operation_id: int | None = None
    message_id: int | None = None
    unit_id: int | None = None
    chat_id: int | None = None  # the chat's row id
    unit_code: str | None = None  # case-insensitive
    side: str | None = None
    language: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Original or any translation contains it (case-insensitive, wildcards literal).
    text: str | None = None
    # Some translation of the current revision is flagged ("flagged") or none is ("clean").
    verdict: str | None = None
    state: str | None = None  # some delivery of the current revision is in this state
    after: int | None = None  # keyset cursor, oldest first
    before: int | None = None  # keyset cursor, newest first
    newest_first: bool = False
    limit: int | None = None


def escape_like(text: str) -> str:
    """Escape LIKE's wildcards (and its escape character) so `text` matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class MessageLogRepo:
    """The log's reads, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rows(self, q: LogRows) -> list[LogRow]:
        """The messages `q` selects, with their chat, operation and unit."""
        stmt: Any = (
            select(Message, Chat, Operation, Unit)
            .join(Chat, Message.chat_id == Chat.id)
            .join(Operation, Message.operation_id == Operation.id)
            .outerjoin(Unit, Chat.unit_id == Unit.id)
        )
        stmt = stmt.order_by(Message.id.desc() if q.newest_first else Message.id)
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        if q.operation_id is not None:
            stmt = stmt.where(Message.operation_id == q.operation_id)
        if q.message_id is not None:
            stmt = stmt.where(Message.id == q.message_id)
        if q.after is not None:
            stmt = stmt.where(Message.id > q.after)
        if q.before is not None:
            stmt = stmt.where(Message.id < q.before)
        if q.unit_id is not None:
            stmt = stmt.where(Chat.unit_id == q.unit_id)
        if q.chat_id is not None:
            stmt = stmt.where(Message.chat_id == q.chat_id)
        if q.unit_code:
            stmt = stmt.where(func.lower(Unit.code) == q.unit_code.lower())
        if q.side:
            stmt = stmt.where(Unit.side == q.side)
        if q.language:
            stmt = stmt.where(Message.source_language == q.language)
        if q.since is not None:
            stmt = stmt.where(Message.created_at >= q.since)
        if q.until is not None:
            stmt = stmt.where(Message.created_at < q.until)
        if q.verdict:
            # A translation's flags are a JSON list: "[]" when the output raised no doubt.
            flagged = exists().where(
                TranslationRow.message_id == Message.id,
                TranslationRow.revision == Message.revision,
                cast(TranslationRow.flags, String) != "[]",
            )
            stmt = stmt.where(flagged if q.verdict == "flagged" else ~flagged)
        if q.state:
            stmt = stmt.where(
                exists().where(
                    and_(
                        Delivery.message_id == Message.id,
                        Delivery.revision == Message.revision,
                        Delivery.state == q.state,
                    )
                )
            )
        if q.text:
            pattern = "%" + escape_like(q.text.lower()) + "%"
            in_translation = select(TranslationRow.message_id).where(
                func.lower(TranslationRow.text).like(pattern, escape="\\")
            )
            stmt = stmt.where(
                or_(
                    func.lower(Message.text).like(pattern, escape="\\"),
                    Message.id.in_(in_translation),
                )
            )
        return [(m, chat, op, unit) for m, chat, op, unit in (await self.session.execute(stmt))]

    async def translations(
        self, message_ids: Sequence[int]
    ) -> tuple[Sequence[TranslationRow], Sequence[tuple[Delivery, Chat, Unit | None]]]:
        """Every translation of these messages (by message, then language) and every delivery
        with its target chat and unit (in outbox order)."""
        ids = list(message_ids)
        trows = (
            await self.session.execute(
                select(TranslationRow)
                .where(TranslationRow.message_id.in_(ids))
                .order_by(TranslationRow.message_id, TranslationRow.target_language)
            )
        ).scalars()
        drows = await self.session.execute(
            select(Delivery, Chat, Unit)
            .join(Chat, Delivery.target_chat_id == Chat.id)
            .outerjoin(Unit, Chat.unit_id == Unit.id)
            .where(Delivery.message_id.in_(ids))
            .order_by(Delivery.id)
        )
        return list(trows), [(d, chat, unit) for d, chat, unit in drows]

    async def operation_named(self, name: str) -> Operation | None:
        """The operation with this name, case-insensitive."""
        result = await self.session.execute(
            select(Operation).where(func.lower(Operation.name) == name.strip().lower())
        )
        return result.scalar_one_or_none()

    async def units_coded(self, code: str, operation_id: int | None) -> list[Unit]:
        """Units with this code (case-insensitive), in one operation or any."""
        stmt = select(Unit).where(func.lower(Unit.code) == code.strip().lower())
        if operation_id is not None:
            stmt = stmt.where(Unit.operation_id == operation_id)
        return list((await self.session.execute(stmt)).scalars())

    async def unit_chat_ids(self, unit_id: int) -> list[int]:
        """The Telegram ids of every chat a unit ever had."""
        result = await self.session.execute(
            select(Chat.telegram_chat_id).where(Chat.unit_id == unit_id)
        )
        return list(result.scalars())

    async def chat(self, telegram_chat_id: int, operation_id: int | None) -> Chat | None:
        """A chat by Telegram id (in one operation, if given)."""
        stmt = select(Chat).where(Chat.telegram_chat_id == telegram_chat_id)
        if operation_id is not None:
            stmt = stmt.where(Chat.operation_id == operation_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def chats_titled(self, title: str, operation_id: int | None) -> list[Chat]:
        """Chats with this title, case-insensitive (in one operation, if given)."""
        stmt = select(Chat).where(func.lower(Chat.title) == title.lower())
        if operation_id is not None:
            stmt = stmt.where(Chat.operation_id == operation_id)
        return list((await self.session.execute(stmt)).scalars())

    async def unit_codes(self, operation_id: int | None) -> tuple[str, ...]:
        """Unit codes (of one operation, or all), sorted, each once."""
        stmt = select(Unit.code).order_by(Unit.code)
        if operation_id is not None:
            stmt = stmt.where(Unit.operation_id == operation_id)
        return tuple(dict.fromkeys((await self.session.execute(stmt)).scalars()))

    async def flash_of(self, message_id: int, operation_id: int | None) -> Flash | None:
        """The FLASH order a message is, if any (in one operation, if given)."""
        stmt = select(Flash).where(Flash.message_id == message_id)
        if operation_id is not None:
            stmt = stmt.where(Flash.operation_id == operation_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest_flashes(self, operation_id: int | None, limit: int) -> list[Flash]:
        """The latest FLASH orders (of one operation, or all), newest first."""
        stmt = select(Flash).order_by(Flash.id.desc()).limit(limit)
        if operation_id is not None:
            stmt = stmt.where(Flash.operation_id == operation_id)
        return list((await self.session.execute(stmt)).scalars())

    async def flash_parts(
        self, flash: Flash
    ) -> tuple[Message | None, dict[int, Unit], dict[int, FlashAck]]:
        """A FLASH's message, its operation's units by id and its acknowledgements by unit."""
        message = await self.session.get(Message, flash.message_id)
        units = {
            u.id: u
            for u in (
                await self.session.execute(
                    select(Unit).where(Unit.operation_id == flash.operation_id)
                )
            ).scalars()
        }
        acks = {
            a.unit_id: a
            for a in (
                await self.session.execute(select(FlashAck).where(FlashAck.flash_id == flash.id))
            ).scalars()
        }
        return message, units, acks
