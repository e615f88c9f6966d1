"""FLASH reminders and escalations: a unit that has not acknowledged is reminded in its group
(once, at the FLASH's `remind_after`), then the sender is told privately which units are still
silent (once, at `escalate_after`).

The schedule takes the time as an argument (`check(now)`); a periodic task in `bot.app.serve`
calls it through `FlashService.check_flash_reminders`, so tests drive it with a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain import escape_html
from bot.rendering.formatting import format_time
from bot.services.flash_acks import AckReport
from bot.services.notify import Notice, queue_notices
from storage.status_repo import Flash
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.services.flash import FlashService


class FlashReminders:
    """The reminder and escalation steps of one FlashService (its units of work and texts)."""

    def __init__(self, service: FlashService) -> None:
        self.service = service

    async def check(self, now: datetime) -> list[Notice]:
        """Remind units that have not acknowledged (at `remind_after`), then escalate to the
        sender (at `escalate_after`); each step happens once per FLASH. The notices are queued
        in the notice outbox in the transaction that records the step as done, so a step is
        never recorded without its notices on their way. Returns what was queued."""
        queued: list[Notice] = []
        async with self.service.uow() as uow:
            due = list(await uow.flashes.open_due(now))
        for flash_row in due:
            async with self.service.uow() as uow:
                flash = await uow.flashes.get(flash_row.id)
                if flash is None or flash.escalated_at is not None:
                    continue
                remind = flash.reminded_at is None and now >= flash.remind_after
                escalate = now >= flash.escalate_after
                if not (remind or escalate):
                    continue
                report = await self.service.ack_report(uow, flash)
                waiting = sorted({r.unit for r in report.rows if r.acked_at is None})
                notices: list[Notice] = []
                if remind and waiting:
                    notices.extend(await self._reminder_notices(uow, flash, set(waiting)))
                if escalate and waiting:
                    notices.extend(await self._escalation_notices(uow, flash, report, waiting))
                await queue_notices(
                    uow.notices,
                    notices,
                    now=now,
                    ref=f"flash:{flash.id}",
                    operation_id=flash.operation_id,
                )
                steps = []
                if remind:
                    flash.reminded_at = now
                    steps.append(("flash.reminded", "flash.reminder"))
                if escalate:
                    flash.escalated_at = now
                    steps.append(("flash.escalated", "flash.escalation"))
                for event_type, kind in steps:
                    await uow.audit(
                        component="flash",
                        event_type=event_type,
                        actor="daraja",
                        operation_id=flash.operation_id,
                        ts=now,
                        payload={
                            "flash_id": flash.id,
                            "units": waiting,
                            "queued": sum(1 for n in notices if n.kind == kind),
                        },
                    )
            queued.extend(notices)
        if queued:
            self.service.on_notice()
        return queued

    async def _reminder_notices(
        self, uow: UnitOfWork, flash: Flash, waiting: set[str]
    ) -> list[Notice]:
        """To each silent unit's groups, in the group's language, under the FLASH copy."""
        chats = await uow.status.unit_chats(flash.operation_id)
        units = {u.id: u for u in await uow.status.units(flash.operation_id)}
        notices = []
        for unit_id in flash.expected_units or []:
            unit = units.get(unit_id)
            if unit is None or unit.code not in waiting:
                continue
            for chat in chats.get(unit_id, []):
                copies = await uow.messages.copies_of(flash.message_id, chat.id)
                reply_to = copies[-1].telegram_message_id if copies else None
                lang = chat.language_list[0]
                notices.append(
                    Notice(
                        chat.telegram_chat_id,
                        "🔴 " + self.service.i18n.t("flash.reminder", lang),
                        reply_to,
                        kind="flash.reminder",
                    )
                )
        return notices

    async def _escalation_notices(
        self, uow: UnitOfWork, flash: Flash, report: AckReport, waiting: Sequence[str]
    ) -> list[Notice]:
        """To the sender privately, in the sender's language (the commanders' chats too when
        the FLASH came from one)."""
        op = await uow.operations.by_id(flash.operation_id)
        sender = await uow.people.by_telegram_id(flash.sender_user_id)
        lang = (sender.language if sender else None) or (op.default_language if op else "en")
        tz = op.timezone if op else "America/Port-au-Prince"
        targets = [(flash.sender_user_id, lang)]
        source = await uow.chats.by_telegram_id(flash.source_chat_id)
        if source is not None and source.is_command:
            targets.append((source.telegram_chat_id, source.language_list[0]))
        return [
            Notice(
                chat_id,
                self.service.i18n.t(
                    "flash.escalation",
                    reader,
                    time=escape_html(format_time(flash.created_at, reader, tz)),
                    units=escape_html(", ".join(waiting)),
                ),
                kind="flash.escalation",
            )
            for chat_id, reader in targets
        ]
