"""Staleness alerts: a unit that has not reported within its operation's interval is named
to the operation's commanders, once per lapse.

The schedule takes the time as an argument (`check(now)`); a periodic task in `bot.app.serve`
calls it through `StatusService.check_staleness`, so tests drive it with a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain import Role, escape_html
from bot.rendering.formatting import format_age
from bot.services.board import BoardRow
from bot.services.notify import Notice, queue_notices
from storage.models import Operation, Unit
from storage.status_repo import StaleAlert
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.services.status import StatusService


class StalenessAlerts:
    """The staleness rule of one StatusService (its units of work, board and texts)."""

    def __init__(self, service: StatusService) -> None:
        self.service = service

    async def check(self, now: datetime) -> list[Notice]:
        """Alert each operation's commanders once per reporting lapse; returns what was queued.

        A lapse is identified by the unit's last report (`r<id>`), or `none` before the first
        one, so a unit is alerted again only after it has reported and lapsed once more. The
        alerts are queued in the notice outbox in the transaction that records the lapses as
        alerted, so a lapse is never marked alerted without its alert on its way.
        """
        queued: list[Notice] = []
        async with self.service.uow() as uow:
            operations = list(await uow.operations.all())
        for op in operations:
            async with self.service.uow() as uow:
                board = await self.service._board(uow.status, op, now)
                repo = uow.status
                done = await repo.alerted_lapses(op.id)
                units = {u.code: u for u in await repo.units(op.id)}
                latest = await repo.latest_reports(op.id)
                targets = await self._commanders(uow, op)
                lapses: list[tuple[Unit, str, BoardRow]] = []
                for row in board.rows:
                    if not row.stale:
                        continue
                    unit = units[row.code]
                    report = latest.get(unit.id)
                    lapse = f"r{report.id}" if report else "none"
                    if (unit.id, lapse) not in done:
                        lapses.append((unit, lapse, row))
                if not lapses or not targets:
                    continue
                notices = [
                    Notice(
                        chat_id, self._stale_text(op, lapses, lang, now), kind="status.stale_alert"
                    )
                    for chat_id, lang in targets
                ]
                await queue_notices(
                    uow.notices, notices, now=now, ref=f"operation:{op.id}", operation_id=op.id
                )
                for unit, lapse, _row in lapses:
                    await repo.add_alert(
                        StaleAlert(
                            operation_id=op.id, unit_id=unit.id, lapse=lapse, alerted_at=now
                        )
                    )
                await uow.audit(
                    component="status",
                    event_type="status.stale_alert",
                    actor="daraja",
                    operation_id=op.id,
                    ts=now,
                    payload={
                        "units": [u.code for u, _, _ in lapses],
                        "lapses": [lapse for _, lapse, _ in lapses],
                        "notified": [chat for chat, _ in targets],
                    },
                )
            queued.extend(notices)
        if queued:
            self.service.on_notice()
        return queued

    def _stale_text(
        self, op: Operation, lapses: Sequence[tuple[Unit, str, BoardRow]], lang: str, now: datetime
    ) -> str:
        """One staleness alert in the reader's language."""
        lines = []
        for _unit, _lapse, row in lapses:
            age = (
                format_age(now - row.report.created_at, lang, self.service.i18n)
                if row.report
                else self.service.i18n.t("board.no_report", lang)
            )
            lines.append(
                f"• <b>{escape_html(row.code)}</b> ({escape_html(row.side)}): {escape_html(age)}"
            )
        head = self.service.i18n.t(
            "stale.alert", lang, operation=escape_html(op.name), interval=op.report_interval_min
        )
        return head + "\n" + "\n".join(lines)

    async def _commanders(self, uow: UnitOfWork, op: Operation) -> list[tuple[int, str]]:
        """Where the operation's commanders read alerts: its command chats, else each commander
        privately (Telegram private chat id = user id), each in its language."""
        command = await uow.status.command_chats(op.id)
        if command:
            return [(c.telegram_chat_id, c.language_list[0]) for c in command]
        people = await uow.people.in_operation(op.id)
        return [
            (p.telegram_user_id, p.language or op.default_language)
            for p in people
            if p.role in (Role.COMMANDER.value, Role.ADMIN.value)
        ]
