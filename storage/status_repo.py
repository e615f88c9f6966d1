"""Unit status tables (SITREP reports, FLASH messages, acknowledgements, alerted lapses) and
the intent-named queries over them.

The tables are created by migration 0004; the ORM classes share `storage.models.Base`. Like the
other repositories, each call runs in the caller's session: one command is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Chat, Unit, utcnow


class Report(Base):
    """One SITREP: a unit's status, location, strength, needs and remarks at a time."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_unit_time", "unit_id", "created_at"),
        Index("ix_reports_operation", "operation_id", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    author_user_id: Mapped[int | None] = mapped_column(BigInteger)
    author_name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(24))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    place: Mapped[str | None] = mapped_column(String(128))
    strength: Mapped[int | None] = mapped_column(Integer)
    needs: Mapped[str] = mapped_column(Text, default="")
    remarks: Mapped[str] = mapped_column(Text, default="")
    text_language: Mapped[str | None] = mapped_column(String(8))
    # {lang: {"needs": str, "remarks": str, "flags": [str]}} for the operation's languages.
    translations: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Flash(Base):
    """A FLASH message: who sent it, which units must acknowledge, and its reminder schedule."""

    __tablename__ = "flashes"
    __table_args__ = (
        UniqueConstraint("message_id"),
        UniqueConstraint("source_chat_id", "source_message_id"),
        Index("ix_flashes_open", "escalated_at", "remind_after"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    sender_user_id: Mapped[int] = mapped_column(BigInteger)
    sender_name: Mapped[str] = mapped_column(String(255), default="")
    # Where the commander typed /flash (a private chat or a group), for replays.
    source_chat_id: Mapped[int] = mapped_column(BigInteger)
    source_message_id: Mapped[int] = mapped_column(BigInteger)
    expected_units: Mapped[list[Any]] = mapped_column(JSON, default=list)  # unit ids
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    remind_after: Mapped[datetime]
    escalate_after: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]


class FlashAck(Base):
    """One unit's acknowledgement of a FLASH (once per unit)."""

    __tablename__ = "flash_acks"
    __table_args__ = (UniqueConstraint("flash_id", "unit_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flash_id: Mapped[int] = mapped_column(ForeignKey("flashes.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"))
    person_user_id: Mapped[int] = mapped_column(BigInteger)
    person_name: Mapped[str] = mapped_column(String(255), default="")
    acked_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaleAlert(Base):
    """A reporting lapse the commanders were already told about (one alert per lapse)."""

    __tablename__ = "stale_alerts"
    __table_args__ = (UniqueConstraint("unit_id", "lapse"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    lapse: Mapped[str] = mapped_column(String(32))
    alerted_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusRepo:
    """Queries over reports, lapses and the units' chats."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_report(self, report: Report) -> Report:
        """Store a report."""
        self.session.add(report)
        await self.session.flush()
        return report

    async def latest_reports(self, operation_id: int) -> dict[int, Report]:
        """The newest report of every unit of an operation that has one, by unit id."""
        newest = (
            select(func.max(Report.id).label("id"))
            .where(Report.operation_id == operation_id)
            .group_by(Report.unit_id)
            .subquery()
        )
        result = await self.session.execute(select(Report).join(newest, Report.id == newest.c.id))
        return {r.unit_id: r for r in result.scalars()}

    async def units_with_latest(self, operation_id: int) -> list[tuple[Unit, Report | None]]:
        """Every unit of an operation in code order with its newest report, in one query."""
        newest = (
            select(Report.unit_id, func.max(Report.id).label("id"))
            .where(Report.operation_id == operation_id)
            .group_by(Report.unit_id)
            .subquery()
        )
        result = await self.session.execute(
            select(Unit, Report)
            .outerjoin(newest, newest.c.unit_id == Unit.id)
            .outerjoin(Report, Report.id == newest.c.id)
            .where(Unit.operation_id == operation_id, Unit.retired_at.is_(None))
            .order_by(Unit.code)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def unit_reports(self, unit_id: int, limit: int) -> Sequence[Report]:
        """A unit's most recent reports, newest first."""
        result = await self.session.execute(
            select(Report).where(Report.unit_id == unit_id).order_by(Report.id.desc()).limit(limit)
        )
        return result.scalars().all()

    async def unit_chats(self, operation_id: int) -> dict[int, list[Chat]]:
        """The active chats bound to each unit of an operation, by unit id."""
        result = await self.session.execute(
            select(Chat)
            .where(
                Chat.operation_id == operation_id,
                Chat.active.is_(True),
                Chat.unit_id.is_not(None),
            )
            .order_by(Chat.id)
        )
        chats: dict[int, list[Chat]] = {}
        for chat in result.scalars():
            assert chat.unit_id is not None
            chats.setdefault(chat.unit_id, []).append(chat)
        return chats

    async def command_chats(self, operation_id: int) -> Sequence[Chat]:
        """The operation's active commanders' chats."""
        result = await self.session.execute(
            select(Chat)
            .where(
                Chat.operation_id == operation_id,
                Chat.active.is_(True),
                Chat.is_command.is_(True),
            )
            .order_by(Chat.id)
        )
        return result.scalars().all()

    async def alerted_lapses(self, operation_id: int) -> set[tuple[int, str]]:
        """The (unit id, lapse) pairs already alerted in an operation."""
        result = await self.session.execute(
            select(StaleAlert.unit_id, StaleAlert.lapse).where(
                StaleAlert.operation_id == operation_id
            )
        )
        return {(row[0], row[1]) for row in result.all()}

    async def add_alert(self, alert: StaleAlert) -> None:
        """Remember an alerted lapse."""
        self.session.add(alert)
        await self.session.flush()

    async def units(self, operation_id: int) -> Sequence[Unit]:
        """The operation's units in code order."""
        result = await self.session.execute(
            select(Unit)
            .where(Unit.operation_id == operation_id, Unit.retired_at.is_(None))
            .order_by(Unit.code)
        )
        return result.scalars().all()


class FlashRepo:
    """Queries over FLASH messages and their acknowledgements."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, flash: Flash) -> Flash:
        """Store a FLASH."""
        self.session.add(flash)
        await self.session.flush()
        return flash

    async def get(self, flash_id: int) -> Flash | None:
        """One FLASH by id."""
        return await self.session.get(Flash, flash_id)

    async def by_message(self, message_id: int) -> Flash | None:
        """The FLASH recorded as this message, if any."""
        result = await self.session.execute(select(Flash).where(Flash.message_id == message_id))
        return result.scalar_one_or_none()

    async def by_source(self, source_chat_id: int, source_message_id: int) -> Flash | None:
        """The FLASH a /flash command created (replay detection)."""
        result = await self.session.execute(
            select(Flash).where(
                Flash.source_chat_id == source_chat_id,
                Flash.source_message_id == source_message_id,
            )
        )
        return result.scalar_one_or_none()

    async def acks(self, flash_id: int) -> Sequence[FlashAck]:
        """Every acknowledgement of a FLASH, first first."""
        result = await self.session.execute(
            select(FlashAck).where(FlashAck.flash_id == flash_id).order_by(FlashAck.id)
        )
        return result.scalars().all()

    async def ack_of(self, flash_id: int, unit_id: int) -> FlashAck | None:
        """A unit's acknowledgement of a FLASH, if it acknowledged."""
        result = await self.session.execute(
            select(FlashAck).where(FlashAck.flash_id == flash_id, FlashAck.unit_id == unit_id)
        )
        return result.scalar_one_or_none()

    async def add_ack(self, ack: FlashAck) -> FlashAck:
        """Record an acknowledgement (IntegrityError when the unit already acknowledged)."""
        self.session.add(ack)
        await self.session.flush()
        return ack

    async def open_due(self, now: datetime) -> Sequence[Flash]:
        """FLASHes not yet escalated whose reminder or escalation time has come."""
        result = await self.session.execute(
            select(Flash)
            .where(Flash.escalated_at.is_(None), Flash.remind_after <= now)
            .order_by(Flash.id)
        )
        return result.scalars().all()

    async def latest_by_sender(self, sender_user_id: int, limit: int) -> Sequence[Flash]:
        """A commander's most recent FLASHes, newest first."""
        result = await self.session.execute(
            select(Flash)
            .where(Flash.sender_user_id == sender_user_id)
            .order_by(Flash.id.desc())
            .limit(limit)
        )
        return result.scalars().all()
