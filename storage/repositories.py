"""Repositories: intent-named async queries over one session (no SQL outside `storage/`).

Each repository wraps the caller's `AsyncSession`; the caller owns the transaction, so one
command is one transaction and nothing is half-written when it fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, EnrollmentCode, Operation, Person, Unit


class OperationRepo:
    """Operations and their units."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, *, name: str, default_language: str, timezone: str, report_interval_min: int
    ) -> Operation:
        """Create an operation."""
        op = Operation(
            name=name,
            default_language=default_language,
            timezone=timezone,
            report_interval_min=report_interval_min,
            glossary={},
        )
        self.session.add(op)
        await self.session.flush()
        return op

    async def by_name(self, name: str) -> Operation | None:
        """The operation with this name (case-insensitive), if any."""
        result = await self.session.execute(
            select(Operation).where(func.lower(Operation.name) == name.lower())
        )
        return result.scalar_one_or_none()

    async def by_id(self, operation_id: int) -> Operation | None:
        """The operation with this id, if any."""
        return await self.session.get(Operation, operation_id)

    async def of_person(self, telegram_user_id: int) -> Operation | None:
        """The operation a person is enrolled in, if any."""
        result = await self.session.execute(
            select(Operation)
            .join(Person, Person.operation_id == Operation.id)
            .where(Person.telegram_user_id == telegram_user_id)
        )
        return result.scalar_one_or_none()

    async def all(self) -> Sequence[Operation]:
        """Every operation, oldest first."""
        return (
            (await self.session.execute(select(Operation).order_by(Operation.id))).scalars().all()
        )

    async def add_unit(
        self, *, operation: Operation, code: str, name: str, side: str, language: str
    ) -> Unit:
        """Add a unit to an operation."""
        unit = Unit(operation_id=operation.id, code=code, name=name, side=side, language=language)
        self.session.add(unit)
        await self.session.flush()
        return unit

    async def unit(self, operation: Operation, code: str) -> Unit | None:
        """The operation's unit with this code (case-insensitive), if any."""
        result = await self.session.execute(
            select(Unit).where(
                Unit.operation_id == operation.id, func.lower(Unit.code) == code.lower()
            )
        )
        return result.scalar_one_or_none()

    async def unit_by_id(self, unit_id: int) -> Unit | None:
        """The unit with this id, if any."""
        return await self.session.get(Unit, unit_id)

    async def units(self, operation: Operation) -> Sequence[Unit]:
        """The operation's units in code order."""
        result = await self.session.execute(
            select(Unit).where(Unit.operation_id == operation.id).order_by(Unit.code)
        )
        return result.scalars().all()


class ChatRepo:
    """Enrolled Telegram chats."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_telegram_id(self, telegram_chat_id: int) -> Chat | None:
        """The enrolled chat with this Telegram id, if any (active or not)."""
        result = await self.session.execute(
            select(Chat).where(Chat.telegram_chat_id == telegram_chat_id)
        )
        return result.scalar_one_or_none()

    async def is_active(self, telegram_chat_id: int) -> bool:
        """Whether a chat is actively enrolled: the gate asks for every group message, so it
        is one prebuilt table query, no ORM rows."""
        result = await self.session.execute(_CHAT_ACTIVE, {"tg": telegram_chat_id})
        return bool(result.scalar_one_or_none())

    async def add(
        self,
        *,
        telegram_chat_id: int,
        operation_id: int,
        unit_id: int | None,
        title: str,
        chat_type: str,
        languages: Sequence[str],
        is_command: bool,
        enrolled_by: int | None,
    ) -> Chat:
        """Enroll a chat."""
        chat = Chat(
            telegram_chat_id=telegram_chat_id,
            operation_id=operation_id,
            unit_id=unit_id,
            title=title[:255],
            chat_type=chat_type,
            languages=",".join(languages),
            is_command=is_command,
            back_translate=False,
            active=True,
            enrolled_by=enrolled_by,
        )
        self.session.add(chat)
        await self.session.flush()
        return chat

    async def linked(self, operation_id: int) -> Sequence[Chat]:
        """Every active chat of an operation."""
        result = await self.session.execute(
            select(Chat)
            .where(Chat.operation_id == operation_id, Chat.active.is_(True))
            .order_by(Chat.id)
        )
        return result.scalars().all()

    async def migrate(self, old_id: int, new_id: int) -> Chat | None:
        """Follow a group -> supergroup migration, keeping the enrollment."""
        chat = await self.by_telegram_id(old_id)
        if chat is None:
            return None
        if await self.by_telegram_id(new_id) is not None:
            return chat
        chat.telegram_chat_id = new_id
        chat.chat_type = "supergroup"
        await self.session.flush()
        return chat


class PersonRepo:
    """People known to the bot."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_telegram_id(self, telegram_user_id: int) -> Person | None:
        """The person with this Telegram user id, if known."""
        result = await self.session.execute(
            select(Person).where(Person.telegram_user_id == telegram_user_id)
        )
        return result.scalar_one_or_none()

    async def add(self, person: Person) -> Person:
        """Record a new person (flushed: the id is set)."""
        self.session.add(person)
        await self.session.flush()
        return person

    async def upsert(
        self,
        *,
        telegram_user_id: int,
        display_name: str,
        role: str,
        language: str | None,
        operation_id: int | None,
        unit_id: int | None,
    ) -> Person:
        """Create the person or update role, language, operation and unit."""
        person = await self.by_telegram_id(telegram_user_id)
        if person is None:
            person = Person(telegram_user_id=telegram_user_id, rank="")
            self.session.add(person)
        person.display_name = display_name[:255]
        person.role = role
        person.language = language
        person.operation_id = operation_id
        person.unit_id = unit_id
        await self.session.flush()
        return person

    async def in_operation(self, operation_id: int) -> Sequence[Person]:
        """Everyone enrolled in an operation."""
        result = await self.session.execute(
            select(Person).where(Person.operation_id == operation_id).order_by(Person.id)
        )
        return result.scalars().all()


class CodeRepo:
    """Enrollment codes (stored as SHA-256 hashes)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, code: EnrollmentCode) -> EnrollmentCode:
        """Store a new code."""
        self.session.add(code)
        await self.session.flush()
        return code

    async def by_hash(self, code_hash: str) -> EnrollmentCode | None:
        """The code with this hash, locked for update (PostgreSQL) so it is used once."""
        result = await self.session.execute(
            select(EnrollmentCode).where(EnrollmentCode.code_hash == code_hash).with_for_update()
        )
        return result.scalar_one_or_none()

    async def mark_used(self, code: EnrollmentCode, *, by: int, at: datetime) -> None:
        """Consume a code."""
        code.used_at = at
        code.used_by = by
        await self.session.flush()


_CHAT_ACTIVE = select(Chat.__table__.c.active).where(
    Chat.__table__.c.telegram_chat_id == bindparam("tg")
)
