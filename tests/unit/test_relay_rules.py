"""The relay's rules without a database: an enrolled group's message is recorded once and
queued to every partner group in its language, a replay or an unknown edit queues nothing, an
unenrolled chat is not relayed, a refused write is not taken for a replay, and a revoked
person is refused (audited) with their unsent copies held. Each test runs on a
`FakeUnitOfWork` in milliseconds; tests/integration/test_relay_service.py runs the same
service on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import AccessDenied
from bot.services.enrollment import Caller, EnrollmentService
from bot.services.relay import Inbound, RelayService
from bot.services.revocation import RevocationService
from storage.errors import RefusedWrite
from tests.support.fakes import Clock, FakeTranslator
from tests.support.uow import FakeStore, other_integrity_error

ADMIN = 1
OFFICER = 2001
GROUPS = (("PNH-1", "PNH", "ht", -101), ("PNH-2", "PNH", "fr", -102), ("KE-3", "MSS", "sw", -103))


@pytest.fixture
def world() -> dict[str, Any]:
    """Three unit groups of one operation and an officer of the first."""
    clock = Clock()
    store = FakeStore()
    op = store.operation()
    chats = {}
    for code, side, lang, chat_id in GROUPS:
        unit = store.unit(op, code, side, lang)
        chats[code] = store.chat(op, chat_id, lang, unit=unit)
    store.person(op, OFFICER, "officer", language="ht")
    no_db: Any = None  # the store stands in for the database
    relay = RelayService(no_db, no_db, FakeTranslator(), clock=clock, storage=store)
    return {"store": store, "relay": relay, "chats": chats, "clock": clock, "no_db": no_db}


def _inbound(text: str, *, message_id: int = 10, chat_id: int = -101, **kw: Any) -> Inbound:
    return Inbound(
        chat_id=chat_id,
        message_id=message_id,
        author_id=OFFICER,
        author_name="Officer Jean",
        kind="text",
        text=text,
        **kw,
    )


async def test_a_message_is_queued_to_every_partner_group_in_its_language(
    world: dict[str, Any],
) -> None:
    store, chats = world["store"], world["chats"]
    result = await world["relay"].receive(_inbound("ht: Nou bloke wout la"))
    assert result.status == "queued"
    assert result.source_language == "ht"
    # One copy per partner group, in order, never back to the sender's own group.
    assert [(d.target_chat_id, d.target_language) for d in store.deliveries] == [
        (chats["PNH-2"].id, "fr"),
        (chats["KE-3"].id, "sw"),
    ]
    assert {lang: tr.text for _, _, lang, tr in store.translations} == {
        "fr": "[fr] ht: Nou bloke wout la",
        "sw": "[sw] ht: Nou bloke wout la",
    }
    assert next(e.event_type for e in store.events) == "message.received"
    assert store.commits == 1


async def test_a_replayed_update_queues_nothing_more(world: dict[str, Any]) -> None:
    store, relay = world["store"], world["relay"]
    first = await relay.receive(_inbound("ht: Rapò"))
    again = await relay.receive(_inbound("ht: Rapò"))
    assert again.status == "duplicate"
    assert again.message_id == first.message_id
    assert len(store.deliveries) == 2
    assert len(store.messages) == 1


async def test_an_edit_goes_to_the_chats_the_original_went_to(world: dict[str, Any]) -> None:
    store, relay = world["store"], world["relay"]
    await relay.receive(_inbound("ht: Nou rive"))
    edited = await relay.receive(_inbound("ht: Nou poko rive", edited=True))
    assert edited.status == "queued"
    assert [d.action for d in store.deliveries] == ["send", "send", "edit", "edit"]
    assert [d.revision for d in store.deliveries[2:]] == [1, 1]
    (message,) = store.messages.values()
    assert (message.text, message.revision) == ("ht: Nou poko rive", 1)


async def test_an_edit_of_a_message_never_relayed_queues_nothing(world: dict[str, Any]) -> None:
    result = await world["relay"].receive(_inbound("fr: corrigé", edited=True))
    assert result.status == "unknown_edit"
    assert world["store"].deliveries == []


async def test_a_chat_that_is_not_enrolled_is_not_relayed(world: dict[str, Any]) -> None:
    world["chats"]["KE-3"].active = False
    result = await world["relay"].receive(_inbound("sw: Tumefika", chat_id=-103))
    assert result.status == "not_enrolled"
    assert world["store"].deliveries == []
    assert world["store"].messages == {}


async def test_a_refused_write_is_an_error_not_a_replay(world: dict[str, Any]) -> None:
    store = world["store"]
    store.failures["relay.record_copies"] = other_integrity_error()
    with pytest.raises(RefusedWrite):
        await world["relay"].receive(_inbound("ht: Atansyon"))
    # Rolled back whole: no message without its copies.
    assert store.messages == {}
    assert store.deliveries == []
    assert store.rollbacks == 1


async def test_a_revoked_person_is_refused_audited_and_their_copies_held(
    world: dict[str, Any],
) -> None:
    store, no_db = world["store"], world["no_db"]
    await world["relay"].receive(_inbound("ht: Mwen la"))
    revocation = RevocationService(no_db, no_db, [ADMIN], storage=store)
    enrollment = EnrollmentService(no_db, no_db, [ADMIN], storage=store)
    admin = Caller(user_id=ADMIN, display_name="Admin", actor="cli:ops")
    assert not await revocation.is_revoked(OFFICER)
    state = await revocation.revoke_person(admin, OFFICER)
    assert state.state == "revoked"
    # Copies not yet sent never go out after the cut.
    assert {d.state for d in store.deliveries} == {"failed"}
    (revoked,) = store.events_of("admin.person_revoked")
    assert revoked.payload["copies_held"] == 2
    assert revoked.actor == "cli:ops"
    # What the gate asks for every message, and the refusal it records.
    assert await revocation.is_revoked(OFFICER)
    officer = Caller(user_id=OFFICER, display_name="Officer Jean")
    await enrollment.record_refusal(officer, "person.revoked", chat_id=-101, command=None)
    (refused,) = store.events_of("access.refused")
    assert (refused.actor, refused.payload["reason"]) == (f"tg:{OFFICER}", "person.revoked")


async def test_a_non_admin_cannot_revoke_and_the_attempt_is_audited(
    world: dict[str, Any],
) -> None:
    store, no_db = world["store"], world["no_db"]
    revocation = RevocationService(no_db, no_db, [ADMIN], storage=store)
    with pytest.raises(AccessDenied):
        await revocation.revoke_person(Caller(user_id=OFFICER, display_name="x"), OFFICER)
    assert not await revocation.is_revoked(OFFICER)
    (refused,) = store.events_of("access.refused")
    assert refused.payload["reason"] == "admins_only"
