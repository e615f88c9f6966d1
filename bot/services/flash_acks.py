"""How a FLASH acknowledgement is recorded, and the `/acks` report.

Who may acknowledge: any member of the unit's group, for that group's unit (officers often
have not `/join`ed individually, and being in the group is what the button proves). A person
enrolled to *another* unit is refused, as is a press on a message that is not this FLASH's copy
(a forged callback). A unit acknowledges once; a second press answers who acknowledged and when.
Every refused press is audited on its own, after the transaction that found it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain import escape_html
from bot.errors import NotFound
from bot.rendering.formatting import format_time
from storage.models import Chat, Unit
from storage.status_repo import Flash, FlashAck
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.services.flash import FlashService

ACK_PREFIX = "ack:"


def ack_data(flash_id: int) -> str:
    """Callback data of a FLASH's acknowledge button."""
    return f"{ACK_PREFIX}{flash_id}"


def parse_ack_data(data: str | None) -> int | None:
    """The FLASH id in `ack:<id>` callback data, or None."""
    if not data or not data.startswith(ACK_PREFIX):
        return None
    tail = data[len(ACK_PREFIX) :]
    return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class AckResult:
    """The outcome of one press of an acknowledge button."""

    status: str  # acked | already | other_unit | not_a_copy | unknown
    unit: str = ""
    name: str = ""
    acked_at: datetime | None = None
    timezone: str = "America/Port-au-Prince"


@dataclass(frozen=True)
class AckRow:
    """One expected unit on `/acks`."""

    unit: str
    side: str
    acked_by: str | None
    acked_at: datetime | None


@dataclass(frozen=True)
class AckReport:
    """`/acks`: one FLASH and which units acknowledged it."""

    flash_id: int
    text: str
    sent_at: datetime
    timezone: str
    rows: tuple[AckRow, ...]

    @property
    def acked(self) -> int:
        """How many expected units acknowledged."""
        return sum(1 for r in self.rows if r.acked_at is not None)


@dataclass(frozen=True)
class _Press:
    """A press that acknowledges the FLASH for the group's unit."""

    flash: Flash
    chat: Chat
    unit: Unit
    operation_id: int
    timezone: str


@dataclass(frozen=True)
class _Refusal:
    """A press that does not, why (audited as `flash.ack_refused`) and what the person hears."""

    reason: str  # unknown | not_a_copy | other_unit | already
    result: AckResult
    operation_id: int | None


class FlashAcks:
    """The acknowledgement steps of one FlashService (its units of work, clock and texts)."""

    def __init__(self, service: FlashService) -> None:
        self.service = service

    async def acknowledge(
        self,
        *,
        flash_id: int,
        user_id: int,
        user_name: str,
        telegram_chat_id: int,
        telegram_message_id: int,
        copy_html: str | None = None,
    ) -> AckResult:
        """Record a unit's acknowledgement from a press in its group (once per unit). With
        the pressed copy's text (`copy_html`), the copy is queued for an edit that shows who
        acknowledged and when, without the button. A refused press is audited on its own."""
        await self._wait_for_copy(telegram_chat_id, telegram_message_id)
        now = self.service.clock()
        async with self.service.uow() as uow:
            press = await self._check_press(
                uow, flash_id, user_id, telegram_chat_id, telegram_message_id
            )
            if isinstance(press, _Press):
                queued_edit = await self._record_ack(
                    uow, press, user_id, user_name, telegram_message_id, copy_html, now
                )
        if isinstance(press, _Press):
            if queued_edit:
                self.service.on_notice()
            return AckResult("acked", press.unit.code, user_name, now, press.timezone)
        async with self.service.uow() as uow:
            await uow.audit(
                component="flash",
                event_type="flash.ack_refused",
                actor=f"tg:{user_id}",
                outcome="refused",
                operation_id=press.operation_id,
                ts=now,
                payload={
                    "flash_id": flash_id,
                    "reason": press.reason,
                    "chat_id": telegram_chat_id,
                    "message_id": telegram_message_id,
                },
            )
        return press.result

    async def _wait_for_copy(self, telegram_chat_id: int, telegram_message_id: int) -> None:
        """A press can beat the outbox recording the copy it was made on (the copy reaches the
        chat a moment before its row commits): give the message map a second to catch up."""
        for _ in range(10):
            async with self.service.uow(read_only=True) as uow:
                if await uow.messages.copy_at(telegram_chat_id, telegram_message_id):
                    return
            await asyncio.sleep(0.1)

    async def _check_press(
        self,
        uow: UnitOfWork,
        flash_id: int,
        user_id: int,
        telegram_chat_id: int,
        telegram_message_id: int,
    ) -> _Press | _Refusal:
        """Whether this press acknowledges the FLASH for the group's unit, and if not why."""
        flash = await uow.flashes.get(flash_id)
        chat = await uow.chats.by_telegram_id(telegram_chat_id)
        copy = await uow.messages.copy_at(telegram_chat_id, telegram_message_id)
        op = await uow.operations.by_id(flash.operation_id) if flash else None
        if flash is None or op is None:
            return _Refusal("unknown", AckResult("unknown"), None)
        tz = op.timezone
        if (
            chat is None
            or not chat.active
            or chat.unit_id is None
            or copy is None
            or copy.message_id != flash.message_id
            or chat.unit_id not in (flash.expected_units or [])
        ):
            return _Refusal("not_a_copy", AckResult("not_a_copy", timezone=tz), op.id)
        unit = await uow.operations.unit_by_id(chat.unit_id)
        assert unit is not None
        person = await uow.people.by_telegram_id(user_id)
        if person is not None and person.unit_id not in (None, unit.id):
            other = await uow.operations.unit_by_id(person.unit_id)
            result = AckResult("other_unit", other.code if other else "", timezone=tz)
            return _Refusal("other_unit", result, op.id)
        existing = await uow.flashes.ack_of(flash.id, unit.id)
        if existing is not None:
            result = AckResult("already", unit.code, existing.person_name, existing.acked_at, tz)
            return _Refusal("already", result, op.id)
        return _Press(flash, chat, unit, op.id, tz)

    async def _record_ack(
        self,
        uow: UnitOfWork,
        press: _Press,
        user_id: int,
        user_name: str,
        telegram_message_id: int,
        copy_html: str | None,
        now: datetime,
    ) -> bool:
        """Store and audit the acknowledgement; with the copy's text, queue the copy's edit
        ("acknowledged by …", button gone) through the notice outbox. Whether it queued one."""
        flash, chat, unit = press.flash, press.chat, press.unit
        await uow.flashes.add_ack(
            FlashAck(
                flash_id=flash.id,
                unit_id=unit.id,
                chat_id=chat.id,
                person_user_id=user_id,
                person_name=user_name[:255],
                acked_at=now,
            )
        )
        await uow.audit(
            component="flash",
            event_type="flash.acked",
            actor=f"tg:{user_id}",
            operation_id=press.operation_id,
            ts=now,
            payload={
                "flash_id": flash.id,
                "unit": unit.code,
                "chat_id": chat.telegram_chat_id,
                "person": user_name,
                "acked_at": now.isoformat(),
            },
        )
        if copy_html is None:
            return False
        lang = chat.language_list[0]
        acked = self.service.i18n.t(
            "flash.acked",
            lang,
            name=escape_html(user_name),
            unit=escape_html(unit.code),
            time=escape_html(format_time(now, lang, press.timezone)),
        )
        await uow.notices.queue(
            telegram_chat_id=chat.telegram_chat_id,
            kind="flash.acked",
            ref=f"flash:{flash.id}",
            operation_id=press.operation_id,
            action="edit",
            target_message_id=telegram_message_id,
            text=f"{copy_html}\n\n✅ {acked}",
            now=now,
        )
        return True

    async def acks(self, viewer_id: int, flash_id: int | None = None) -> AckReport:
        """`/acks`: the viewer's latest FLASH (or the one named) and who acknowledged it."""
        async with self.service._refusals(viewer_id, None, "acks"), self.service.uow() as uow:
            flashes = uow.flashes
            if flash_id is not None:
                flash = await flashes.get(flash_id)
                person = await uow.people.by_telegram_id(viewer_id)
                if (
                    flash is not None
                    and flash.sender_user_id != viewer_id
                    and not (person and person.operation_id == flash.operation_id)
                ):
                    flash = None
            else:
                latest = await flashes.latest_by_sender(viewer_id, 1)
                flash = latest[0] if latest else None
            if flash is None:
                raise NotFound("no FLASH", key="flash.none", refused="no_flash")
            return await self.ack_report(uow, flash)

    async def ack_report(self, uow: UnitOfWork, flash: Flash) -> AckReport:
        """Which of the FLASH's expected units acknowledged, waiting ones first."""
        op = await uow.operations.by_id(flash.operation_id)
        message = await uow.messages.message(flash.message_id)
        units = {u.id: u for u in await uow.status.units(flash.operation_id)}
        acks = {a.unit_id: a for a in await uow.flashes.acks(flash.id)}
        rows = []
        for unit_id in flash.expected_units or []:
            unit = units.get(unit_id)
            if unit is None:
                continue
            ack = acks.get(unit_id)
            rows.append(
                AckRow(
                    unit.code,
                    unit.side,
                    ack.person_name if ack else None,
                    ack.acked_at if ack else None,
                )
            )
        rows.sort(key=lambda r: (r.acked_at is not None, r.unit))
        return AckReport(
            flash.id,
            message.text if message else "",
            flash.created_at,
            op.timezone if op else "America/Port-au-Prince",
            tuple(rows),
        )

    def render_acks(self, report: AckReport, lang: str) -> str:
        """`/acks` as Telegram HTML in the reader's language."""
        i18n = self.service.i18n
        preview = report.text if len(report.text) <= 80 else report.text[:79] + "…"
        lines = [
            i18n.t(
                "acks.title",
                lang,
                time=escape_html(format_time(report.sent_at, lang, report.timezone)),
                acked=report.acked,
                total=len(report.rows),
            ),
            f"<i>{escape_html(preview)}</i>",
            "",
        ]
        for row in report.rows:
            if row.acked_at is not None:
                lines.append(
                    "✅ "
                    + i18n.t(
                        "acks.row_acked",
                        lang,
                        unit=escape_html(row.unit),
                        name=escape_html(row.acked_by or "?"),
                        time=escape_html(format_time(row.acked_at, lang, report.timezone)),
                    )
                )
            else:
                lines.append("⏳ " + i18n.t("acks.row_waiting", lang, unit=escape_html(row.unit)))
        return "\n".join(lines)[:4000]
