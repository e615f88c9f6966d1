"""The FLASH rules without a database: who is reminded and when, who is told of silence,
who may acknowledge, and that a refused write is never taken for a replay. Each test runs on
a `FakeUnitOfWork` in milliseconds; tests/integration/test_flash_service.py runs the same
service on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.errors import StorageError
from bot.i18n import I18n, load_i18n
from bot.services.flash import FlashService
from bot.services.flash_acks import AckResult
from storage.models import Message
from storage.status_repo import Flash, FlashAck
from tests.support.fakes import Clock, FakeTranslator
from tests.support.uow import FakeStore, other_integrity_error, unique_violation

COMMANDER = 3001
UNITS = (("PNH-1", "PNH", "ht", -101), ("PNH-2", "PNH", "fr", -102), ("KE-1", "MSS", "sw", -103))
COMMAND_CHAT = -199


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


@pytest.fixture
def world(i18n: I18n) -> dict[str, Any]:
    """An operation of three unit groups and a commanders' chat, and one FLASH typed by the
    commander in that chat, posted to every group (copy ids 500+)."""
    clock = Clock()
    store = FakeStore()
    op = store.operation()
    units, groups = {}, {}
    for code, side, lang, chat_id in UNITS:
        units[code] = store.unit(op, code, side, lang)
        groups[code] = store.chat(op, chat_id, lang, unit=units[code])
    command = store.chat(op, COMMAND_CHAT, "fr", is_command=True)
    store.person(op, COMMANDER, "commander", language="en")
    message = Message(id=store.next_id(), operation_id=op.id, chat_id=command.id, text="Hold")
    message.telegram_message_id = 12
    store.messages[message.id] = message
    now = clock()
    flash = Flash(
        id=store.next_id(),
        operation_id=op.id,
        message_id=message.id,
        sender_user_id=COMMANDER,
        sender_name="Cmdt",
        source_chat_id=COMMAND_CHAT,
        source_message_id=12,
        expected_units=[u.id for u in units.values()],
        created_at=now,
        remind_after=now + timedelta(minutes=5),
        escalate_after=now + timedelta(minutes=15),
    )
    store.flashes[flash.id] = flash
    for n, chat in enumerate(groups.values()):
        store.copy(message, chat, 500 + n)
    service = FlashService(
        None,  # type: ignore[arg-type]  # no database: every call goes through the fake
        None,  # type: ignore[arg-type]
        FakeTranslator(),  # type: ignore[arg-type]
        i18n,
        clock=clock,
        uow=store.factory(),
    )
    woken: list[int] = []
    service.on_notice = lambda: woken.append(1)
    return {
        "store": store,
        "service": service,
        "clock": clock,
        "flash": flash,
        "units": units,
        "groups": groups,
        "woken": woken,
    }


def _ack(world: dict[str, Any], code: str) -> None:
    unit, chat = world["units"][code], world["groups"][code]
    world["store"].acks.append(
        FlashAck(
            flash_id=world["flash"].id,
            unit_id=unit.id,
            chat_id=chat.id,
            person_user_id=4000,
            person_name=f"Chef {code}",
            acked_at=world["clock"](),
        )
    )


async def _press(world: dict[str, Any], user_id: int, chat_id: int, copy_id: int) -> AckResult:
    """Someone presses the acknowledge button of the world's FLASH under a copy in a chat."""
    service: FlashService = world["service"]
    return await service.acknowledge(
        flash_id=world["flash"].id,
        user_id=user_id,
        user_name=f"user {user_id}",
        telegram_chat_id=chat_id,
        telegram_message_id=copy_id,
    )


async def test_silent_units_are_reminded_once_in_their_language_under_the_copy(
    world: dict[str, Any], i18n: I18n
) -> None:
    store: FakeStore = world["store"]
    service: FlashService = world["service"]
    clock: Clock = world["clock"]
    _ack(world, "PNH-1")
    clock.advance(minutes=4, seconds=59)
    assert await service.check_flash_reminders(clock()) == []
    assert store.notices == []
    clock.advance(seconds=1)
    queued = await service.check_flash_reminders(clock())
    assert [(n.chat_id, n.reply_to) for n in queued] == [(-102, 501), (-103, 502)]
    assert [(r.telegram_chat_id, r.kind, r.target_message_id) for r in store.notices] == [
        (-102, "flash.reminder", 501),
        (-103, "flash.reminder", 502),
    ]
    assert i18n.t("flash.reminder", "fr") in store.notices[0].text
    assert i18n.t("flash.reminder", "sw") in store.notices[1].text
    (event,) = store.events_of("flash.reminded")
    assert event.payload == {
        "flash_id": world["flash"].id,
        "units": ["KE-1", "PNH-2"],
        "queued": 2,
    }
    assert world["flash"].reminded_at == clock()
    assert world["woken"] == [1]  # the notice worker is told at once
    clock.advance(minutes=1)
    assert await service.check_flash_reminders(clock()) == []
    assert len(store.notices) == 2


async def test_the_sender_and_the_commanders_chat_are_told_who_is_still_silent(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    service: FlashService = world["service"]
    clock: Clock = world["clock"]
    clock.advance(minutes=5)
    await service.check_flash_reminders(clock())
    _ack(world, "PNH-1")
    _ack(world, "PNH-2")
    clock.advance(minutes=10)
    queued = await service.check_flash_reminders(clock())
    assert [(n.chat_id, n.kind) for n in queued] == [
        (COMMANDER, "flash.escalation"),
        (COMMAND_CHAT, "flash.escalation"),
    ]
    assert "KE-1" in queued[0].text
    assert "not yet acknowledged" in queued[0].text  # the commander reads English
    assert "PNH-1" not in queued[0].text
    assert len(store.events_of("flash.escalated")) == 1
    clock.advance(hours=1)
    assert await service.check_flash_reminders(clock()) == []


async def test_a_flash_everyone_acknowledged_is_closed_without_a_notice(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    for code, *_rest in UNITS:
        _ack(world, code)
    world["clock"].advance(minutes=15)
    assert await world["service"].check_flash_reminders(world["clock"]()) == []
    assert store.notices == []
    assert world["flash"].escalated_at is not None
    assert world["woken"] == []


async def test_a_press_is_recorded_once_per_unit_and_its_copy_queued_for_the_edit(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    service: FlashService = world["service"]
    press = {"flash_id": world["flash"].id, "telegram_chat_id": -103, "telegram_message_id": 502}
    result = await service.acknowledge(
        user_id=4001, user_name="Koech", copy_html="<b>FLASH</b>", **press
    )
    assert (result.status, result.unit, result.name) == ("acked", "KE-1", "Koech")
    (edit,) = store.notices
    assert (edit.action, edit.telegram_chat_id, edit.target_message_id) == ("edit", -103, 502)
    assert edit.text.startswith("<b>FLASH</b>\n\n✅ ")
    assert "Koech" in edit.text
    again = await service.acknowledge(user_id=4002, user_name="Otieno", **press)
    assert (again.status, again.name) == ("already", "Koech")
    assert len(store.acks) == 1
    assert len(store.notices) == 1
    assert [e.event_type for e in store.events] == ["flash.acked", "flash.ack_refused"]


async def test_presses_for_another_unit_or_on_another_message_are_refused(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    op = store.operations[world["flash"].operation_id]
    store.person(op, 4005, "officer", unit=world["units"]["PNH-1"])
    other_unit = await _press(world, 4005, -103, 502)
    assert (other_unit.status, other_unit.unit) == ("other_unit", "PNH-1")
    # A copy of another message in the same group carries a forged button.
    other = Message(id=store.next_id(), operation_id=op.id, chat_id=1, text="other")
    store.messages[other.id] = other
    store.copy(other, world["groups"]["KE-1"], 777)
    forged = await _press(world, 4006, -103, 777)
    assert forged.status == "not_a_copy"
    assert store.acks == []
    assert store.notices == []
    refused = store.events_of("flash.ack_refused")
    assert [e.payload["reason"] for e in refused] == ["other_unit", "not_a_copy"]


async def _send(service: FlashService, message_id: int = 90) -> Any:
    return await service.send(
        sender_id=COMMANDER,
        sender_name="Cmdt",
        telegram_chat_id=COMMANDER,  # typed privately
        telegram_message_id=message_id,
        text="Retounen nan baz",
    )


async def test_a_refused_write_is_told_to_the_sender_not_taken_for_a_replay(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    service: FlashService = world["service"]
    before = dict(store.messages)
    store.failures["flashes.add"] = other_integrity_error()
    with pytest.raises(StorageError) as refused:
        await _send(service)
    assert refused.value.key == "flash.not_sent"
    # A unique constraint that is not the replay's is no replay either.
    store.failures["flashes.add"] = unique_violation("flashes", "message_id")
    with pytest.raises(StorageError):
        await _send(service)
    assert store.messages == before  # both rolled back
    assert store.rollbacks == 2


async def test_a_replayed_update_racing_its_first_copy_is_a_silent_duplicate(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    store.failures["flashes.add"] = unique_violation(
        "flashes", "source_chat_id", "source_message_id"
    )
    sent = await _send(world["service"])
    assert sent.duplicate
    assert store.events_of("flash.sent") == []


async def test_a_flash_is_queued_to_every_group_translated_and_awaits_every_unit(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    sent = await _send(world["service"])
    assert not sent.duplicate
    # Typed privately: the three unit groups and the commanders' chat each get a copy.
    groups = world["groups"]
    command = next(c for c in store.chats.values() if c.is_command)
    queued = [d for d in store.deliveries if d.message_id == sent.message_id]
    assert sent.deliveries == len(queued) == 4
    assert {d.target_chat_id for d in queued} == {c.id for c in groups.values()} | {command.id}
    # Written in the commander's language (en): every group's language is translated.
    assert {lang for m, _rev, lang, _tr in store.translations if m == sent.message_id} == {
        "ht",
        "fr",
        "sw",
    }
    flash = store.flashes[sent.flash_id]
    assert sorted(flash.expected_units) == sorted(u.id for u in world["units"].values())
    assert sorted(sent.units) == ["KE-1", "PNH-1", "PNH-2"]
    assert dict(sent.copy_verdicts) == {"KE-1": "ok", "PNH-1": "ok", "PNH-2": "ok"}
    (event,) = store.events_of("flash.sent")
    assert event.payload["flash_id"] == sent.flash_id


async def test_a_flash_whose_copies_cannot_be_queued_is_not_sent_and_awaits_nobody(
    world: dict[str, Any],
) -> None:
    """Recording the copies is part of sending: when it is refused the whole FLASH is rolled
    back (no FLASH row waiting for acknowledgements that cannot come) and the sender is told."""
    store: FakeStore = world["store"]
    flashes, messages = dict(store.flashes), dict(store.messages)
    store.failures["relay.record_copies"] = other_integrity_error()
    with pytest.raises(StorageError) as refused:
        await _send(world["service"])
    assert refused.value.key == "flash.not_sent"
    assert store.flashes == flashes
    assert store.messages == messages
    assert store.deliveries == []
    assert store.events_of("flash.sent") == []
    # Sent again once the database takes it, it goes out (the refusal was not a replay).
    sent = await _send(world["service"])
    assert not sent.duplicate
    assert sent.deliveries == 4


async def test_a_unit_whose_copy_never_arrived_is_not_acknowledged_but_reminded_and_named(
    world: dict[str, Any], i18n: I18n
) -> None:
    """KE-1's copy failed (no copy in its group): nobody there can press its button, so it is
    still waited for: reminded in its group (with no copy to answer) and named to the sender."""
    store: FakeStore = world["store"]
    service: FlashService = world["service"]
    clock: Clock = world["clock"]
    ke1 = world["groups"]["KE-1"]
    store.copies = [c for c in store.copies if c.target_chat_id != ke1.id]
    assert (await _press(world, 4003, -103, 502)).status == "not_a_copy"
    for code, chat_id, copy_id in (("PNH-1", -101, 500), ("PNH-2", -102, 501)):
        acked = await _press(world, 4000 + chat_id, chat_id, copy_id)
        assert (acked.status, acked.unit) == ("acked", code)
    report = await service.acks(COMMANDER, world["flash"].id)
    assert [r.unit for r in report.rows if r.acked_at is None] == ["KE-1"]
    clock.advance(minutes=5)
    (reminder,) = await service.check_flash_reminders(clock())
    assert (reminder.chat_id, reminder.reply_to) == (-103, None)
    assert i18n.t("flash.reminder", "sw") in reminder.text
    clock.advance(minutes=10)
    escalations = await service.check_flash_reminders(clock())
    assert [n.chat_id for n in escalations] == [COMMANDER, COMMAND_CHAT]
    assert "KE-1" in escalations[0].text
    assert "PNH" not in escalations[0].text
