"""FLASH messages: a commander's priority order to every unit, acknowledged unit by unit.

`/flash TEXT` is recorded like any relayed message (a `messages` row with priority `flash`, its
translations, audit events, one outbox row per chat of the operation) plus a `flashes` row that
names the units expected to acknowledge and the reminder and escalation times. Each unit
group's copy carries an "acknowledge" button (`ack:<flash id>`).

A FLASH typed in a private chat has no enrolled chat of its own: its `messages` row is filed
under the operation's commanders' chat (else its first chat) with a synthetic negative Telegram
message id, and the real private chat and message ids are kept in `flashes` (replay detection).

Sending is here; recording a press of the button and `/acks` are in flash_acks.py; reminders
and escalations in flash_reminders.py. `FlashService` is the one entry point for all three.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.domain import MessageKind, escape_html
from bot.errors import NotFound, StorageError, UserInputError
from bot.i18n import I18n
from bot.services.flash_acks import AckReport, AckResult, FlashAcks, ack_data
from bot.services.flash_reminders import FlashReminders
from bot.services.notify import Notice
from bot.services.recording import records_of
from bot.services.refusals import audited_refusals
from bot.services.translator import Translator
from storage.audit import AuditChain
from storage.db import Database
from storage.errors import FLASH_SOURCE, MESSAGE_SOURCE, Duplicate, RefusedWrite
from storage.models import Chat, Message, Operation, Unit, utcnow
from storage.status_repo import Flash, FlashRepo
from storage.uow import UnitOfWork
from translation.types import Translation, Verdict

log = logging.getLogger(__name__)

DEFAULT_REMIND = timedelta(minutes=5)
DEFAULT_ESCALATE = timedelta(minutes=15)
MAX_FLASH_TEXT = 3000


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


# --- the steps of sending and acknowledging, as values ----------------------------------------


@dataclass(frozen=True)
class _SenderContext:
    """What the first, read-only step of sending learns: the target chats and languages."""

    targets: list[Chat]
    origin_languages: list[str]  # empty when typed privately
    author_language: str | None
    default_language: str
    glossary: Any


@dataclass(frozen=True)
class _Outgoing:
    """A checked, translated FLASH ready to be stored."""

    text: str
    source: str
    decided_by: str
    targets: list[Chat]
    translations: dict[str, Translation]
    now: datetime


@dataclass(frozen=True)
class _Stored:
    """What the storing transaction wrote."""

    flash_id: int
    message_id: int
    count: int  # copies queued
    unit_targets: list[Chat]
    expected: list[int]  # unit ids expected to acknowledge
    units: dict[int, Unit]


class FlashService:
    """Sends FLASH messages and records acknowledgements; reminders and escalations are in
    bot/services/flash_reminders.py."""

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
        self.acks_ = FlashAcks(self)
        self.reminders = FlashReminders(self)

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
        """Record a FLASH and queue a copy to every other chat of the sender's operation.

        Three steps: check the sender and find the target chats (refusals audited), detect
        and translate outside any transaction, then store and queue everything together."""
        text = text.strip()
        if not text:
            raise UserInputError("empty FLASH", key="flash.usage")
        if len(text) > MAX_FLASH_TEXT:
            raise UserInputError("FLASH too long", key="flash.too_long", limit=MAX_FLASH_TEXT)
        context = await self._sender_context(sender_id, telegram_chat_id, telegram_message_id)
        if isinstance(context, FlashSent):
            return context  # a replay of a FLASH already recorded
        guess = self.translator.detect(
            text,
            chat_languages=context.origin_languages
            or [context.author_language or context.default_language],
            author_language=context.author_language,
        )
        source = guess.language
        languages: list[str] = []
        for chat in context.targets:
            languages.extend(x for x in chat.language_list if x != source and x not in languages)
        translations = await self._translate(text, source, languages, context.glossary)
        outgoing = _Outgoing(
            text=text,
            source=source,
            decided_by=guess.decided_by,
            targets=context.targets,
            translations=translations,
            now=self.clock(),
        )
        try:
            stored = await self._store_flash(
                outgoing, sender_id, sender_name, telegram_chat_id, telegram_message_id, update_id
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
        if stored.count:
            self.on_queued()
        units, expected = stored.units, stored.expected
        return FlashSent(
            stored.flash_id,
            stored.message_id,
            stored.count,
            tuple(units[u].code for u in expected if u in units),
            tuple(languages),
            copy_verdicts=_copy_verdicts(stored.unit_targets, units, source, translations),
        )

    async def _sender_context(
        self, sender_id: int, telegram_chat_id: int, telegram_message_id: int
    ) -> _SenderContext | FlashSent:
        """Where the FLASH goes and what detecting its language needs (refusals audited); the
        earlier FlashSent when this message was recorded before."""
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
            return _SenderContext(
                targets=targets,
                origin_languages=origin.language_list if not private else [],
                author_language=sender.language if sender else None,
                default_language=op.default_language,
                glossary=op.glossary or None,
            )

    async def _store_flash(
        self,
        outgoing: _Outgoing,
        sender_id: int,
        sender_name: str,
        telegram_chat_id: int,
        telegram_message_id: int,
        update_id: int | None,
    ) -> _Stored:
        """One transaction: the `messages` row, the `flashes` row naming the units expected to
        acknowledge, the audit event and a copy queued to every target chat."""
        now, targets = outgoing.now, outgoing.targets
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
                    kind=MessageKind.TEXT,
                    text=outgoing.text,
                    entities=None,
                    media={"flash": True},
                    source_language=outgoing.source,
                    language_decided_by=outgoing.decided_by,
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
                    "text": outgoing.text,
                    "language": outgoing.source,
                    "units": [units[u].code for u in expected if u in units],
                    "remind_after": flash.remind_after.isoformat(),
                    "escalate_after": flash.escalate_after.isoformat(),
                },
            )
            count = await uow.relay.record_copies(
                message=message,
                translations=records_of(outgoing.translations),
                targets=targets,
                now=now,
            )
        return _Stored(flash.id, message.id, count, unit_targets, expected, units)

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
        """Record a unit's acknowledgement (bot/services/flash_acks.py)."""
        return await self.acks_.acknowledge(
            flash_id=flash_id,
            user_id=user_id,
            user_name=user_name,
            telegram_chat_id=telegram_chat_id,
            telegram_message_id=telegram_message_id,
            copy_html=copy_html,
        )

    async def acks(self, viewer_id: int, flash_id: int | None = None) -> AckReport:
        """`/acks`: the viewer's latest FLASH (or the one named) and who acknowledged it."""
        return await self.acks_.acks(viewer_id, flash_id)

    async def ack_report(self, uow: UnitOfWork, flash: Flash) -> AckReport:
        """Which of the FLASH's expected units acknowledged, waiting ones first."""
        return await self.acks_.ack_report(uow, flash)

    def render_acks(self, report: AckReport, lang: str) -> str:
        """`/acks` as Telegram HTML in the reader's language."""
        return self.acks_.render_acks(report, lang)

    async def check_flash_reminders(self, now: datetime) -> list[Notice]:
        """Remind silent units, then escalate to the sender (bot/services/flash_reminders.py)."""
        return await self.reminders.check(now)

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

    def _refusals(
        self, actor: int, chat_id: int | None, command: str
    ) -> AbstractAsyncContextManager[None]:
        """Refusals raised inside are audited after the rollback (without an operation: a
        FLASH may come from a private chat), then re-raised."""
        return audited_refusals(
            self.uow,
            component="flash",
            command=command,
            actor=f"tg:{actor}",
            chat_id=chat_id,
            with_operation=False,
        )


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
