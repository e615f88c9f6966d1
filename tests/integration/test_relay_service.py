"""The relay service on a real database with a recording fake translator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.services.enrollment import EnrollmentService
from bot.services.relay import Inbound, RelayService
from storage.audit import AuditChain
from storage.db import Database
from storage.models import AuditEvent, Delivery, Message, TranslationRow
from tests.support.fakes import FakeTranslator
from tests.support.operation import ADMIN, enroll_operation


@pytest.fixture
async def setup(db: Database) -> tuple[RelayService, FakeTranslator, dict[str, int]]:
    audit = AuditChain()
    enrollment = EnrollmentService(db, audit, admin_ids=[ADMIN.user_id])
    op = await enroll_operation(enrollment, mixed=(-1005, "JOINT-1", "ht+en"))
    translator = FakeTranslator()
    queued: list[int] = []
    relay = RelayService(db, audit, translator, on_queued=lambda: queued.append(1))
    return relay, translator, op.chats


def _msg(chat_id: int, message_id: int, text: str, **kw: Any) -> Inbound:
    return Inbound(
        chat_id=chat_id,
        message_id=message_id,
        author_id=2001,
        author_name="Jean",
        kind="text",
        text=text,
        **kw,
    )


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.transaction() as s:
        return list((await s.execute(select(model))).scalars())


async def test_message_goes_to_every_partner_group_in_its_language(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    relay, translator, chats = setup
    result = await relay.receive(_msg(chats["PNH-UDMO-2"], 10, "Inite KE-3 rive Kenscoff"))
    assert result.status == "queued"
    assert result.source_language == "ht"  # prior: the Kreyòl group's language
    # fr, en, sw groups + the ht+en mixed group: one copy each; translations computed once.
    assert result.deliveries == 4
    assert translator.calls == [("Inite KE-3 rive Kenscoff", ("fr", "en", "sw"), "ht")]
    deliveries = await _rows(db, Delivery)
    assert sorted(d.target_language for d in deliveries) == ["en", "fr", "ht,en", "sw"]
    stored = {t.target_language: t for t in await _rows(db, TranslationRow)}
    assert set(stored) == {"fr", "en", "sw"}
    # Each stored as translated (PostgreSQL writes them with the outbox rows, as arrays).
    en = stored["en"]
    assert (en.text, en.route, en.models, en.score, en.flags) == (
        "[en] Inite KE-3 rive Kenscoff",
        "direct",
        ["ht-en"],
        0.9,
        [],
    )
    assert en.created_at.tzinfo is not None
    events = [e.event_type for e in await _rows(db, AuditEvent)]
    assert events.count("message.received") == 1
    assert events.count("translation.made") == 3


async def test_a_replayed_update_is_a_no_op(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    relay, _, chats = setup
    first = await relay.receive(_msg(chats["KE-3"], 11, "en: Unit 3 at grid"))
    again = await relay.receive(_msg(chats["KE-3"], 11, "en: Unit 3 at grid"))
    assert first.status == "queued"
    assert again.status == "duplicate"
    assert len(await _rows(db, Message)) == 1
    assert len(await _rows(db, Delivery)) == first.deliveries


async def test_two_copies_of_one_update_at_once_are_relayed_once(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    """Both pass the replay check before either is recorded: the loser hits the message's
    unique constraint, which the storage seam names, and is a duplicate, not an error."""
    relay, _, chats = setup
    results = await asyncio.gather(
        *(relay.receive(_msg(chats["KE-3"], 12, "en: Unit 3 at grid")) for _ in range(2))
    )
    assert sorted(r.status for r in results) == ["duplicate", "queued"]
    assert len(await _rows(db, Message)) == 1


async def test_mixed_group_gets_an_in_place_annotation(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    relay, _translator, chats = setup
    result = await relay.receive(_msg(chats["JOINT-1"], 12, "ht: Nou bezwen ranfò"))
    assert result.status == "queued"
    rows = await _rows(db, Delivery)
    annotate = [d for d in rows if d.action == "annotate"]
    assert len(annotate) == 1
    assert annotate[0].target_language == "en"  # the group's other language
    assert len(rows) == 5  # four bridged groups + the annotation


async def test_edit_retranslates_and_queues_an_edit_for_every_chat_sent_to(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    relay, _, chats = setup
    first = await relay.receive(_msg(chats["KE-3"], 13, "en: Roadblock cleared"))
    # Even before any copy was posted, each chat gets an edit queued behind its copy.
    edited = await relay.receive(_msg(chats["KE-3"], 13, "en: Roadblock NOT cleared", edited=True))
    assert edited.status == "queued"
    assert edited.deliveries == first.deliveries == 4
    edits = [d for d in await _rows(db, Delivery) if d.action == "edit"]
    assert {d.revision for d in edits} == {1}
    message = (await _rows(db, Message))[0]
    assert message.revision == 1
    assert message.text == "en: Roadblock NOT cleared"
    assert "message.edited" in [e.event_type for e in await _rows(db, AuditEvent)]


async def test_edit_of_an_unknown_message_relays_nothing(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    relay, _, chats = setup
    result = await relay.receive(_msg(chats["KE-3"], 99, "en: hello", edited=True))
    assert result.status == "unknown_edit"
    assert await _rows(db, Message) == []


async def test_unenrolled_chat_keeps_nothing(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    relay, translator, _ = setup
    result = await relay.receive(_msg(-4242, 1, "secret"))
    assert result.status == "not_enrolled"
    assert translator.calls == []
    assert await _rows(db, Message) == []


async def test_hostile_text_is_kept_byte_identical(
    setup: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    relay, _, chats = setup
    nasty = "<b>&amp;</b> \u200b\u202e" + "🚓" * 1000 + "<&>" * 500
    await relay.receive(_msg(chats["KE-3"], 14, nasty))
    assert (await _rows(db, Message))[0].text == nasty
