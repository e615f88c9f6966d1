"""Cutting access off: revoked people, held copies, and the listings an admin checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, Delivery, EnrollmentCode, Message, Person

_PEOPLE = Person.__table__.c
# The gate asks this for every message of an enrolled group: one prebuilt indexed lookup.
_PERSON_REVOKED = select(_PEOPLE.revoked_at).where(_PEOPLE.telegram_user_id == bindparam("tg"))


class AccessRepo:
    """Revocations and the admin's listings, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def revoked_at(self, telegram_user_id: int) -> datetime | None:
        """When this Telegram user was revoked (None: never, or not enrolled)."""
        result = await self.session.execute(_PERSON_REVOKED, {"tg": telegram_user_id})
        return cast(datetime | None, result.scalar_one_or_none())

    async def hold_copies_of_author(self, telegram_user_id: int) -> int:
        """Mark unsent copies of what a person wrote as failed (`revoked`); how many."""
        return await self._hold(
            Delivery.message_id.in_(
                select(Message.id).where(Message.author_user_id == telegram_user_id)
            )
        )

    async def hold_copies_to(self, chat_ids: Sequence[int]) -> int:
        """Mark unsent copies to these chats (row ids) as failed (`revoked`); how many."""
        if not chat_ids:
            return 0
        return await self._hold(Delivery.target_chat_id.in_(list(chat_ids)))

    async def _hold(self, where: ColumnElement[bool]) -> int:
        # A copy already in flight may still arrive; none goes out after the cut.
        result = await self.session.execute(
            update(Delivery)
            .where(where, Delivery.state == "pending")
            .values(state="failed", last_error="revoked")
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def enrolled_people(self, operation_id: int | None = None) -> Sequence[Person]:
        """Everyone enrolled in an operation (or in any), in enrollment order."""
        stmt = select(Person).where(Person.operation_id.is_not(None)).order_by(Person.id)
        if operation_id is not None:
            stmt = stmt.where(Person.operation_id == operation_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def codes(self, operation_id: int | None = None) -> Sequence[EnrollmentCode]:
        """Every enrollment code (of one operation, or all), newest first."""
        stmt = select(EnrollmentCode).order_by(EnrollmentCode.id.desc())
        if operation_id is not None:
            stmt = stmt.where(EnrollmentCode.operation_id == operation_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def code(self, code_id: int) -> EnrollmentCode | None:
        """One enrollment code by its listed id."""
        return await self.session.get(EnrollmentCode, code_id)

    async def chats(self, operation_id: int | None = None) -> Sequence[Chat]:
        """Every chat ever enrolled (in one operation, or all), in enrollment order."""
        stmt = select(Chat).order_by(Chat.id)
        if operation_id is not None:
            stmt = stmt.where(Chat.operation_id == operation_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def unit_chats(self, unit_id: int) -> Sequence[Chat]:
        """A unit's active chats."""
        stmt = select(Chat).where(Chat.unit_id == unit_id, Chat.active)
        return (await self.session.execute(stmt)).scalars().all()

    async def unit_open_codes(self, unit_id: int, now: datetime) -> Sequence[EnrollmentCode]:
        """A unit's codes that could still be used (not used, revoked or expired)."""
        stmt = select(EnrollmentCode).where(
            EnrollmentCode.unit_id == unit_id,
            EnrollmentCode.used_at.is_(None),
            EnrollmentCode.revoked_at.is_(None),
            EnrollmentCode.expires_at > now,
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def unit_people(self, unit_id: int) -> Sequence[Person]:
        """Everyone who names a unit (revoked or not)."""
        stmt = select(Person).where(Person.unit_id == unit_id)
        return (await self.session.execute(stmt)).scalars().all()
