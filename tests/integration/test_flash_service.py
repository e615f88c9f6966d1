"""FLASH to ten groups in four languages on a real database: every group gets it translated
and marked, every acknowledgement is recorded and shown, reminders and escalation fire on a
controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from bot.errors import UserInputError
from bot.i18n import I18n, load_i18n
from bot.services.copies import CopyBuilder, PreparedCopy
from bot.services.enrollment import Caller, EnrollmentService
from bot.services.flash import FlashService
from bot.services.flash_acks import parse_ack_data
from storage.audit import AuditChain
from storage.db import Database
from storage.messages import MessageRepo
from storage.models import AuditEvent, Copy, Delivery, QueuedNotice, utcnow
from storage.status_repo import FlashAck
from tests.support.fakes import Clock
from tests.support.operation import ADMIN, enroll_operation
from translation.types import Flag, LanguageGuess, Route, Translation

COMMANDER = Caller(user_id=3001, display_name="Cmdt Pierre")
LANGS = ("ht", "fr", "en", "sw")
# Ten unit groups, in the four languages in turn.
GROUPS = tuple(
    (-2000 - i, f"U-{i:02d}", "PNH" if LANGS[i % 4] in ("ht", "fr") else "MSS", LANGS[i % 4])
    for i in range(10)
)
COMMAND_CHAT = -2999


class FakeTranslator:
    """Trusts the author's language; translates by tagging with the target."""

    def detect(
        self, text: str, *, chat_languages: Sequence[str], author_language: str | None
    ) -> LanguageGuess:
        return LanguageGuess(author_language or chat_languages[0], "prior:author", 0.6)

    async def translate_many(
        self, text: str, targets: Sequence[str], *, source: str, glossary: Any = None
    ) -> list[Translation]:
        return [
            Translation(
                text=f"[{t}] {text}",
                source=source,
                target=t,
                source_decided_by="given",
                route=Route.DIRECT,
                models=(f"{source}-{t}",),
                score=0.9,
            )
            for t in targets
        ]


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


@pytest.fixture
async def world(db: Database, i18n: I18n) -> dict[str, Any]:
    audit = AuditChain()
    clock = Clock(utcnow())
    enrollment = EnrollmentService(db, audit, admin_ids=[ADMIN.user_id], clock=clock)
    await enroll_operation(enrollment, groups=GROUPS)
    code = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="chat", is_command=True, languages="fr"
    )
    await enrollment.enroll_chat(
        ADMIN,
        code.code,
        chat_id=COMMAND_CHAT,
        chat_title="CMD",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    person = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="person", role="commander", languages="en"
    )
    await enrollment.join(COMMANDER, person.code, chat_type="private")
    service = FlashService(db, audit, FakeTranslator(), i18n, clock=clock)
    return {"service": service, "clock": clock, "enrollment": enrollment, "i18n": i18n}


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.transaction() as s:
        return list((await s.execute(select(model))).scalars())


async def _deliver(db: Database, i18n: I18n) -> dict[int, PreparedCopy]:
    """Render every pending delivery and record it as posted (what the outbox worker does)."""
    builder = CopyBuilder(db, i18n)
    prepared: dict[int, PreparedCopy] = {}
    for row in await _rows(db, Delivery):
        copy = await builder.prepare(row)
        assert copy is not None
        prepared[copy.telegram_chat_id] = copy
        async with db.transaction() as s:
            await MessageRepo(s).add_copy(
                Copy(
                    delivery_id=row.id,
                    message_id=row.message_id,
                    target_chat_id=row.target_chat_id,
                    telegram_chat_id=copy.telegram_chat_id,
                    telegram_message_id=500 + row.id,
                    part=0,
                )
            )
    return prepared


async def _send(world: dict[str, Any], text: str = "Tout inite rete an pozisyon") -> Any:
    return await world["service"].send(
        sender_id=COMMANDER.user_id,
        sender_name=COMMANDER.display_name,
        telegram_chat_id=COMMANDER.user_id,  # typed in a private chat
        telegram_message_id=77,
        text=text,
    )


async def test_flash_reaches_ten_groups_in_four_languages_marked_with_a_button(
    world: dict[str, Any], db: Database, i18n: I18n
) -> None:
    sent = await _send(world)
    assert sent.deliveries == 11  # ten unit groups and the commanders' chat
    assert len(sent.units) == 10
    copies = await _deliver(db, i18n)
    for chat_id, _unit, _side, lang in GROUPS:
        copy = copies[chat_id]
        text = "\n".join(copy.parts)
        assert i18n.t("flash.label", lang) in text.split("\n")[0]
        if lang != "en":  # the commander writes English
            assert f"[{lang}] Tout inite rete an pozisyon" in text
        assert copy.buttons == ((i18n.t("flash.ack_button", lang), f"ack:{sent.flash_id}"),)
    assert copies[COMMAND_CHAT].buttons == ()  # the commanders' chat only reads it
    events = [e.event_type for e in await _rows(db, AuditEvent)]
    assert events.count("flash.sent") == 1


async def test_every_acknowledgement_is_recorded_once_and_shown_to_the_sender(
    world: dict[str, Any], db: Database, i18n: I18n
) -> None:
    service: FlashService = world["service"]
    sent = await _send(world)
    copies = await _deliver(db, i18n)
    for n, (chat_id, _unit, _side, _lang) in enumerate(GROUPS):
        copy_id = await _copy_id(db, chat_id)
        flash_id = parse_ack_data(copies[chat_id].buttons[0][1])
        assert flash_id == sent.flash_id
        result = await service.acknowledge(
            flash_id=flash_id,
            user_id=4000 + n,
            user_name=f"Officer {n}",
            telegram_chat_id=chat_id,
            telegram_message_id=copy_id,
            copy_html=f"<b>FLASH</b> copy {n}",
        )
        assert result.status == "acked"
        again = await service.acknowledge(
            flash_id=flash_id,
            user_id=4100 + n,
            user_name="Someone else",
            telegram_chat_id=chat_id,
            telegram_message_id=copy_id,
        )
        assert again.status == "already"
        assert again.name == f"Officer {n}"
    assert len(await _rows(db, FlashAck)) == 10
    # Each acknowledged copy is queued for its edit: who and when, in the group's language.
    edits = {n.telegram_chat_id: n for n in await _rows(db, QueuedNotice)}
    assert set(edits) == {g[0] for g in GROUPS}
    for n, (chat_id, unit, _side, _lang) in enumerate(GROUPS):
        edit = edits[chat_id]
        assert (edit.action, edit.kind, edit.state) == ("edit", "flash.acked", "pending")
        assert edit.target_message_id == await _copy_id(db, chat_id)
        assert edit.text.startswith(f"<b>FLASH</b> copy {n}\n\n✅ ")
        assert f"Officer {n}" in edit.text
        assert unit in edit.text
    report = await service.acks(COMMANDER.user_id)
    assert report.acked == 10
    rendered = service.render_acks(report, "sw")
    assert "10" in rendered.split("\n")[0]
    assert "Officer 9" in rendered
    events = [e.event_type for e in await _rows(db, AuditEvent)]
    assert events.count("flash.acked") == 10
    assert events.count("flash.ack_refused") == 10  # the second presses


async def test_presses_that_are_not_this_units_are_refused_and_audited(
    world: dict[str, Any], db: Database, i18n: I18n
) -> None:
    service: FlashService = world["service"]
    enrollment: EnrollmentService = world["enrollment"]
    sent = await _send(world)
    await _deliver(db, i18n)
    first, second = GROUPS[0][0], GROUPS[1][0]
    # An officer enrolled to U-01 pressing in U-00's group.
    code = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="person", role="officer", unit="U-01"
    )
    await enrollment.join(Caller(5001, "Koech"), code.code, chat_type="private")
    result = await service.acknowledge(
        flash_id=sent.flash_id,
        user_id=5001,
        user_name="Koech",
        telegram_chat_id=first,
        telegram_message_id=await _copy_id(db, first),
    )
    assert (result.status, result.unit) == ("other_unit", "U-01")
    # A forged press: U-00's copy id used in U-01's group, and a FLASH that does not exist.
    forged = await service.acknowledge(
        flash_id=sent.flash_id,
        user_id=5002,
        user_name="X",
        telegram_chat_id=second,
        telegram_message_id=await _copy_id(db, first),
    )
    assert forged.status == "not_a_copy"
    unknown = await service.acknowledge(
        flash_id=9999,
        user_id=5002,
        user_name="X",
        telegram_chat_id=second,
        telegram_message_id=1,
    )
    assert unknown.status == "unknown"
    assert await _rows(db, FlashAck) == []
    refused = [e for e in await _rows(db, AuditEvent) if e.event_type == "flash.ack_refused"]
    assert len(refused) == 3


async def test_reminder_then_escalation_fire_on_schedule_for_units_still_silent(
    world: dict[str, Any], db: Database, i18n: I18n
) -> None:
    service: FlashService = world["service"]
    clock: Clock = world["clock"]
    sent = await _send(world)
    await _deliver(db, i18n)
    # Seven of ten acknowledge at once.
    for n, (chat_id, *_rest) in enumerate(GROUPS[:7]):
        await service.acknowledge(
            flash_id=sent.flash_id,
            user_id=4000 + n,
            user_name=f"Officer {n}",
            telegram_chat_id=chat_id,
            telegram_message_id=await _copy_id(db, chat_id),
        )
    clock.advance(minutes=4, seconds=59)
    assert await service.check_flash_reminders(clock()) == []
    clock.advance(seconds=1)  # 5 min: reminders to the three silent groups, in their language
    reminders = await service.check_flash_reminders(clock())
    silent = {g[0]: g[3] for g in GROUPS[7:]}
    assert {n.chat_id for n in reminders} == set(silent)
    for notice in reminders:
        assert i18n.t("flash.reminder", silent[notice.chat_id]) in notice.text
        assert notice.reply_to == await _copy_id(db, notice.chat_id)  # under the FLASH copy
    # Queued durably in the commit that records the reminder as done.
    queued = await _rows(db, QueuedNotice)
    assert sorted((q.telegram_chat_id, q.kind, q.target_message_id) for q in queued) == sorted(
        (n.chat_id, "flash.reminder", n.reply_to) for n in reminders
    )
    clock.advance(minutes=1)
    assert await service.check_flash_reminders(clock()) == []  # reminded once
    # One more unit acknowledges after the reminder.
    chat_id = GROUPS[7][0]
    await service.acknowledge(
        flash_id=sent.flash_id,
        user_id=4007,
        user_name="Officer 7",
        telegram_chat_id=chat_id,
        telegram_message_id=await _copy_id(db, chat_id),
    )
    clock.advance(minutes=9)  # 15 min: escalate the last two to the commander, in English
    escalation = await service.check_flash_reminders(clock())
    assert [n.chat_id for n in escalation] == [COMMANDER.user_id]
    assert "U-08, U-09" in escalation[0].text
    assert "not yet acknowledged" in escalation[0].text
    clock.advance(minutes=30)
    assert await service.check_flash_reminders(clock()) == []  # escalated once
    events = [e.event_type for e in await _rows(db, AuditEvent)]
    assert events.count("flash.reminded") == 1
    assert events.count("flash.escalated") == 1


async def test_flash_refusals(world: dict[str, Any], db: Database) -> None:
    service: FlashService = world["service"]
    with pytest.raises(UserInputError):
        await _send(world, "   ")
    with pytest.raises(UserInputError):
        await _send(world, "x" * 5000)
    # A replayed /flash update is sent once.
    first = await _send(world)
    again = await _send(world)
    assert again.duplicate
    assert again.flash_id == first.flash_id
    assert len([d for d in await _rows(db, Delivery)]) == first.deliveries
    del service


async def test_flash_typed_in_the_command_chat_is_not_echoed_back_to_it(
    world: dict[str, Any], db: Database
) -> None:
    sent = await world["service"].send(
        sender_id=COMMANDER.user_id,
        sender_name="Cmdt Pierre",
        telegram_chat_id=COMMAND_CHAT,
        telegram_message_id=12,
        text="Retounen nan baz",
    )
    assert sent.deliveries == 10


async def _copy_id(db: Database, chat_id: int) -> int:
    async with db.transaction() as s:
        row = (await s.execute(select(Copy).where(Copy.telegram_chat_id == chat_id))).scalar_one()
        return row.telegram_message_id


async def test_two_private_flashes_at_once_are_both_recorded_and_queued(
    world: dict[str, Any], db: Database
) -> None:
    """Both FLASHes are filed under the commanders' chat with a synthetic id: typed at the same
    moment they must get different ids, and neither may be taken for a replay and dropped."""
    service: FlashService = world["service"]
    first, second = await asyncio.gather(
        *(
            service.send(
                sender_id=COMMANDER.user_id,
                sender_name=COMMANDER.display_name,
                telegram_chat_id=COMMANDER.user_id,
                telegram_message_id=message_id,
                text=f"Order {message_id}",
            )
            for message_id in (81, 82)
        )
    )
    assert not first.duplicate
    assert not second.duplicate
    assert first.deliveries == second.deliveries == 11
    assert first.message_id != second.message_id
    deliveries = await _rows(db, Delivery)
    assert {d.message_id for d in deliveries} == {first.message_id, second.message_id}
    events = [e.event_type for e in await _rows(db, AuditEvent)]
    assert events.count("flash.sent") == 2


class GarblesSwahili(FakeTranslator):
    """Its Swahili copies come out unusable, as quality estimation would judge them."""

    async def translate_many(
        self, text: str, targets: Sequence[str], *, source: str, glossary: Any = None
    ) -> list[Translation]:
        out = await super().translate_many(text, targets, source=source, glossary=glossary)
        return [
            Translation(
                t.text,
                t.source,
                t.target,
                t.source_decided_by,
                t.route,
                t.models,
                t.score,
                (Flag.UNRELIABLE,) if t.target == "sw" else (),
            )
            for t in out
        ]


async def test_the_flash_goes_out_at_once_and_its_confirmation_says_which_copies_were_ok(
    world: dict[str, Any], db: Database
) -> None:
    service = FlashService(db, AuditChain(), GarblesSwahili(), world["i18n"], clock=world["clock"])
    sent = await service.send(
        sender_id=COMMANDER.user_id,
        sender_name=COMMANDER.display_name,
        telegram_chat_id=COMMANDER.user_id,
        telegram_message_id=78,
        text="Tout inite rete an pozisyon",
    )
    # Every unit's copy is queued now, the doubtful ones too: nothing waits for a rephrase.
    assert sent.deliveries == 11
    verdicts = dict(sent.copy_verdicts)
    assert set(verdicts) == set(sent.units)
    assert {verdicts[f"U-{i:02d}"] for i in range(10) if LANGS[i % 4] == "sw"} == {"unusable"}
    assert {verdicts[f"U-{i:02d}"] for i in range(10) if LANGS[i % 4] != "sw"} == {"ok"}
