"""FLASH messages: a commander's priority order to every unit, acknowledged unit by unit.

`/flash TEXT` is recorded like any relayed message (a `messages` row with priority `flash`, its
translations, audit events, one outbox row per chat of the operation) plus a `flashes` row that
names the units expected to acknowledge and the reminder and escalation times. Each unit
group's copy carries an "acknowledge" button (`ack:<flash id>`).

Who may acknowledge: any member of the unit's group, for that group's unit - officers often
have not `/join`ed individually, and being in the group is what the button proves. A person
enrolled to *another* unit is refused (no acknowledging on a partner's behalf), as is a press on
a message that is not this FLASH's copy (a forged callback). A unit acknowledges once; a second
press answers who acknowledged and when.

A FLASH typed in a private chat has no enrolled chat of its own: its `messages` row is filed
under the operation's commanders' chat (else its first chat) with a synthetic negative Telegram
message id, and the real private chat and message ids are kept in `flashes` (replay detection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.domain import escape_html
from bot.errors import DarajaError, NotFound, StorageError, UserInputError
from bot.i18n import I18n
from bot.rendering.formatting import format_time
from bot.services.notify import Notice, queue_notices
from bot.services.recording import record_copies
from bot.services.translator import Translator
from storage.audit import AuditChain
from storage.db import Database
from storage.errors import FLASH_SOURCE, MESSAGE_SOURCE, Duplicate, RefusedWrite
from storage.models import Chat, Message, Operation, utcnow
from storage.status_repo import Flash, FlashAck, FlashRepo
from storage.uow import UnitOfWork
from translation.types import Translation, Verdict

log = logging.getLogger(__name__)

DEFAULT_REMIND = timedelta(minutes=5)
DEFAULT_ESCALATE = timedelta(minutes=15)
MAX_FLASH_TEXT = 3000
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
class FlashSent:
    """What `/flash` recorded and queued."""

    flash_id: int
    message_id: int
    deliveries: int
    units: tuple[str, ...]
    languages: tuple[str, ...]
    duplicate: bool = False
    # Unit code -> the verdict of the copy its group got (ok / doubtful / unusable), so the
    # sender's confirmation says per unit whether the order came through.
    copy_verdicts: tuple[tuple[str, str], ...] = ()


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


class FlashService:
    """Sends FLASH messages, records acknowledgements, reminds and escalates."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        translator: Translator,
        i18n: I18n,
        *,
        remind_after: timedelta = DEFAULT_REMIND,
        escalate_after: timedelta = DEFAULT_ESCALATE,
        clock: Callable[[], datetime] = utcnow,
        on_queued: Callable[[], None] = lambda: None,
        on_notice: Callable[[], None] = lambda: None,
        uow: Callable[..., UnitOfWork] | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        # Each call is one unit of work (`uow(read_only=True)` for a snapshot); tests pass a
        # factory of fakes.
        self.uow: Callable[..., UnitOfWork] = uow or partial(UnitOfWork, db, audit)
        self.translator = translator
        self.i18n = i18n
        self.remind_after = remind_after
        self.escalate_after = max(escalate_after, remind_after)
        self.clock = clock
        self.on_queued = on_queued
        self.on_notice = on_notice

    async def send(
        self,
        *,
        sender_id: int,
        sender_name: str,
        telegram_chat_id: int,
        telegram_message_id: int,
        text: str,
        update_id: int | None = None,
    ) -> FlashSent:
        """Record a FLASH and queue a copy to every other chat of the sender's operation."""
        text = text.strip()
        if not text:
            raise UserInputError("empty FLASH", key="flash.usage")
        if len(text) > MAX_FLASH_TEXT:
            raise UserInputError("FLASH too long", key="flash.too_long", limit=MAX_FLASH_TEXT)
        async with (
            self._refusals(sender_id, telegram_chat_id, "flash"),
            self.uow() as uow,
        ):
            replay = await uow.flashes.by_source(telegram_chat_id, telegram_message_id)
            if replay is not None:
                return FlashSent(replay.id, replay.message_id, 0, (), (), duplicate=True)
            op, origin, private = await self._origin(uow, sender_id, telegram_chat_id)
            sender = await uow.people.by_telegram_id(sender_id)
            targets = [c for c in await uow.chats.linked(op.id) if private or c.id != origin.id]
            if not [c for c in targets if c.unit_id is not None]:
                raise UserInputError("no unit group to send to", key="flash.no_units")
            origin_langs = origin.language_list if not private else []
            author_lang = sender.language if sender else None
            glossary = op.glossary or None
        guess = self.translator.detect(
            text,
            chat_languages=origin_langs or [author_lang or op.default_language],
            author_language=author_lang,
        )
        source = guess.language
        languages: list[str] = []
        for chat in targets:
            languages.extend(x for x in chat.language_list if x != source and x not in languages)
        translations = await self._translate(text, source, languages, glossary)
        now = self.clock()
        try:
            async with self.uow() as uow:
                op, origin, private = await self._origin(uow, sender_id, telegram_chat_id)
                messages = uow.messages
                # Typed privately: filed in the origin chat under a synthetic id.
                add = messages.add_filed_message if private else messages.add_message
                message = await add(
                    Message(
                        operation_id=op.id,
                        chat_id=origin.id,
                        telegram_message_id=telegram_message_id,
                        update_id=update_id,
                        author_user_id=sender_id,
                        author_name=sender_name[:255],
                        kind="text",
                        text=text,
                        entities=None,
                        media={"flash": True},
                        source_language=source,
                        language_decided_by=guess.decided_by,
                        reply_to_message_id=None,
                        priority="flash",
                        revision=0,
                        created_at=now,
                    )
                )
                unit_targets = [c for c in targets if c.unit_id is not None]
                expected = sorted({c.unit_id for c in unit_targets if c.unit_id is not None})
                flash = await uow.flashes.add(
                    Flash(
                        operation_id=op.id,
                        message_id=message.id,
                        sender_user_id=sender_id,
                        sender_name=sender_name[:255],
                        source_chat_id=telegram_chat_id,
                        source_message_id=telegram_message_id,
                        expected_units=expected,
                        created_at=now,
                        remind_after=now + self.remind_after,
                        escalate_after=now + self.escalate_after,
                    )
                )
                units = {u.id: u for u in await uow.status.units(op.id)}
                await uow.audit(
                    component="flash",
                    event_type="flash.sent",
                    actor=f"tg:{sender_id}",
                    operation_id=op.id,
                    ts=now,
                    payload={
                        "flash_id": flash.id,
                        "message_id": message.id,
                        "chat_id": telegram_chat_id,
                        "author": sender_name,
                        "text": text,
                        "language": source,
                        "units": [units[u].code for u in expected if u in units],
                        "remind_after": flash.remind_after.isoformat(),
                        "escalate_after": flash.escalate_after.isoformat(),
                    },
                )
                count = await record_copies(
                    uow.session,
                    self.audit,
                    message=message,
                    translations=translations,
                    targets=targets,
                    now=now,
                )
        except Duplicate as exc:
            if exc.constraint not in (FLASH_SOURCE, MESSAGE_SOURCE):
                log.error("FLASH from %s not recorded: %s", sender_id, exc.constraint)
                raise StorageError("FLASH not recorded", key="flash.not_sent") from exc
            # Two copies of one update at once: the other one was recorded and answered.
            log.info("FLASH update %s already recorded (%s)", update_id, exc.constraint)
            return FlashSent(0, 0, 0, (), (), duplicate=True)
        except RefusedWrite as exc:
            log.error("FLASH from %s not recorded: %s", sender_id, type(exc).__name__)
            raise StorageError("FLASH not recorded", key="flash.not_sent") from exc
        if count:
            self.on_queued()
        return FlashSent(
            flash.id,
            message.id,
            count,
            tuple(units[u].code for u in expected if u in units),
            tuple(languages),
            copy_verdicts=_copy_verdicts(unit_targets, units, source, translations),
        )

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
        acknowledged and when, without the button."""
        # A press can beat the outbox recording the copy it was made on (the copy reaches the
        # chat a moment before its row commits): give the message map a second to catch up.
        for _ in range(10):
            async with self.uow(read_only=True) as uow:
                if await uow.messages.copy_at(telegram_chat_id, telegram_message_id):
                    break
            await asyncio.sleep(0.1)
        now = self.clock()
        refusal: tuple[str, AckResult] | None = None
        acked_result: AckResult | None = None
        queued_edit = False
        async with self.uow() as uow:
            flashes = uow.flashes
            flash = await flashes.get(flash_id)
            chat = await uow.chats.by_telegram_id(telegram_chat_id)
            copy = await uow.messages.copy_at(telegram_chat_id, telegram_message_id)
            op = await uow.operations.by_id(flash.operation_id) if flash else None
            tz = op.timezone if op else "America/Port-au-Prince"
            if flash is None or op is None:
                refusal = ("unknown", AckResult("unknown"))
            elif (
                chat is None
                or not chat.active
                or chat.unit_id is None
                or copy is None
                or copy.message_id != flash.message_id
                or chat.unit_id not in (flash.expected_units or [])
            ):
                refusal = ("not_a_copy", AckResult("not_a_copy", timezone=tz))
            else:
                unit = await uow.operations.unit_by_id(chat.unit_id)
                assert unit is not None
                person = await uow.people.by_telegram_id(user_id)
                if person is not None and person.unit_id not in (None, unit.id):
                    other = await uow.operations.unit_by_id(person.unit_id)
                    refusal = (
                        "other_unit",
                        AckResult("other_unit", other.code if other else "", timezone=tz),
                    )
                else:
                    existing = await flashes.ack_of(flash.id, unit.id)
                    if existing is not None:
                        refusal = (
                            "already",
                            AckResult(
                                "already", unit.code, existing.person_name, existing.acked_at, tz
                            ),
                        )
                    else:
                        await flashes.add_ack(
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
                            operation_id=op.id,
                            ts=now,
                            payload={
                                "flash_id": flash.id,
                                "unit": unit.code,
                                "chat_id": telegram_chat_id,
                                "person": user_name,
                                "acked_at": now.isoformat(),
                            },
                        )
                        if copy_html is not None:
                            lang = chat.language_list[0]
                            acked = self.i18n.t(
                                "flash.acked",
                                lang,
                                name=escape_html(user_name),
                                unit=escape_html(unit.code),
                                time=escape_html(format_time(now, lang, tz)),
                            )
                            await uow.notices.queue(
                                telegram_chat_id=telegram_chat_id,
                                kind="flash.acked",
                                ref=f"flash:{flash.id}",
                                operation_id=op.id,
                                action="edit",
                                target_message_id=telegram_message_id,
                                text=f"{copy_html}\n\n✅ {acked}",
                                now=now,
                            )
                            queued_edit = True
                        acked_result = AckResult("acked", unit.code, user_name, now, tz)
        if acked_result is not None:
            if queued_edit:
                self.on_notice()
            return acked_result
        assert refusal is not None
        reason, result = refusal
        async with self.uow() as uow:
            await uow.audit(
                component="flash",
                event_type="flash.ack_refused",
                actor=f"tg:{user_id}",
                outcome="refused",
                operation_id=op.id if op else None,
                ts=now,
                payload={
                    "flash_id": flash_id,
                    "reason": reason,
                    "chat_id": telegram_chat_id,
                    "message_id": telegram_message_id,
                },
            )
        return result

    async def acks(self, viewer_id: int, flash_id: int | None = None) -> AckReport:
        """`/acks`: the viewer's latest FLASH (or the one named) and who acknowledged it."""
        async with self._refusals(viewer_id, None, "acks"), self.uow() as uow:
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
            return await self._ack_report(uow, flash)

    async def _ack_report(self, uow: UnitOfWork, flash: Flash) -> AckReport:
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
        i18n = self.i18n
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

    async def check_flash_reminders(self, now: datetime) -> list[Notice]:
        """Remind units that have not acknowledged (at `remind_after`), then escalate to the
        sender (at `escalate_after`); each step happens once per FLASH. The notices are queued
        in the notice outbox in the transaction that records the step as done, so a step is
        never recorded without its notices on their way. Returns what was queued."""
        queued: list[Notice] = []
        async with self.uow() as uow:
            due = list(await uow.flashes.open_due(now))
        for flash_row in due:
            async with self.uow() as uow:
                flash = await uow.flashes.get(flash_row.id)
                if flash is None or flash.escalated_at is not None:
                    continue
                remind = flash.reminded_at is None and now >= flash.remind_after
                escalate = now >= flash.escalate_after
                if not (remind or escalate):
                    continue
                report = await self._ack_report(uow, flash)
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
            self.on_notice()
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
                        "🔴 " + self.i18n.t("flash.reminder", lang),
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
                self.i18n.t(
                    "flash.escalation",
                    reader,
                    time=escape_html(format_time(flash.created_at, reader, tz)),
                    units=escape_html(", ".join(waiting)),
                ),
                kind="flash.escalation",
            )
            for chat_id, reader in targets
        ]

    async def _translate(
        self, text: str, source: str, targets: Sequence[str], glossary: Any
    ) -> dict[str, Translation]:
        if not targets:
            return {}
        results = await self.translator.translate_many(
            text, list(targets), source=source, glossary=glossary
        )
        return dict(zip(targets, results, strict=True))

    async def _origin(
        self, uow: UnitOfWork, sender_id: int, telegram_chat_id: int
    ) -> tuple[Operation, Chat, bool]:
        """The operation and the chat a FLASH is filed under, and whether it came privately."""
        chat = await uow.chats.by_telegram_id(telegram_chat_id)
        if chat is not None and chat.active and telegram_chat_id != sender_id:
            op = await uow.operations.by_id(chat.operation_id)
            assert op is not None
            return op, chat, False
        person = await uow.people.by_telegram_id(sender_id)
        ops = uow.operations
        op = None
        if person is not None and person.operation_id is not None:
            op = await ops.by_id(person.operation_id)
        if op is None:
            every = list(await ops.all())
            op = every[0] if len(every) == 1 else None
        if op is None:
            raise NotFound("no operation for this person", key="status.no_operation")
        command = await uow.status.command_chats(op.id)
        linked = command or await uow.chats.linked(op.id)
        if not linked:
            raise UserInputError("no unit group to send to", key="flash.no_units")
        return op, linked[0], True

    async def _refusals_audit(
        self, actor: int, chat_id: int | None, command: str, reason: str
    ) -> None:
        async with self.uow() as uow:
            await uow.audit(
                component="flash",
                event_type=f"{command}.refused",
                actor=f"tg:{actor}",
                outcome="refused",
                payload={"reason": reason, "chat_id": chat_id},
            )

    def _refusals(self, actor: int, chat_id: int | None, command: str) -> _Refusals:
        return _Refusals(self, actor, chat_id, command)


class _Refusals:
    """Audit a refusal raised inside, after the rollback, then re-raise it."""

    def __init__(self, service: FlashService, actor: int, chat_id: int | None, command: str):
        self.service, self.actor, self.chat_id, self.command = service, actor, chat_id, command

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if isinstance(exc, DarajaError):
            reason = str(exc.params.get("refused") or exc.key)
            await self.service._refusals_audit(self.actor, self.chat_id, self.command, reason)


_SEVERITY = (Verdict.OK, Verdict.DOUBTFUL, Verdict.UNUSABLE)


def _copy_verdicts(
    chats: Sequence[Chat],
    units: dict[int, Any],
    source: str,
    translations: dict[str, Translation],
) -> tuple[tuple[str, str], ...]:
    """Per unit, the worst verdict among the copies its group got (the original is ok)."""
    worst: dict[str, Verdict] = {}
    for chat in chats:
        unit = units.get(chat.unit_id) if chat.unit_id is not None else None
        if unit is None:
            continue
        for lang in chat.language_list:
            tr = translations.get(lang)
            verdict = tr.verdict if tr is not None and lang != source else Verdict.OK
            current = worst.get(unit.code, Verdict.OK)
            worst[unit.code] = max(current, verdict, key=_SEVERITY.index)
    return tuple((code, str(v)) for code, v in sorted(worst.items()))


async def flash_copy_extras(
    flashes: FlashRepo, i18n: I18n, message: Message, target: Chat, lang: str
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The FLASH label line for a copy, and the acknowledge button (label, callback data) when
    the target is a unit group expected to acknowledge."""
    label = f"🔴 <b>{escape_html(i18n.t('flash.label', lang))}</b>"
    flash = await flashes.by_message(message.id)
    if (
        flash is None
        or target.unit_id is None
        or target.unit_id not in (flash.expected_units or [])
    ):
        return label, ()
    return label, ((i18n.t("flash.ack_button", lang), ack_data(flash.id)),)
