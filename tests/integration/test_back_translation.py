"""The sender's back-translation check on a real database, with the relay
tests' recording fake translator: the group setting, what is stored and audited, and the reply
the source group receives."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from bot.errors import AccessDenied
from bot.i18n import load_i18n
from bot.services.copies import CopyBuilder
from bot.services.enrollment import Caller, EnrollmentService
from bot.services.relay import Inbound, RelayService
from storage.audit import AuditChain
from storage.db import Database
from storage.messages import MessageRepo
from storage.models import AuditEvent, Chat, Copy, Delivery, TranslationRow
from tests.support.fakes import FakeTranslator
from tests.support.operation import ADMIN, enroll_operation
from translation.types import Flag, Translation

OFFICER = Caller(user_id=2001, display_name="Jean")


class BrokenBackwards(FakeTranslator):
    """Translates out of Kreyòl, fails on the way back from English."""

    async def translate_many(
        self, text: str, targets: Sequence[str], *, source: str, glossary: Any = None
    ) -> list[Translation]:
        if source == "en":
            raise RuntimeError("model crashed")
        return await super().translate_many(text, targets, source=source, glossary=glossary)


@pytest.fixture
async def world(db: Database) -> tuple[EnrollmentService, AuditChain, dict[str, int]]:
    audit = AuditChain()
    enrollment = EnrollmentService(db, audit, admin_ids=[ADMIN.user_id])
    op = await enroll_operation(enrollment)
    return enrollment, audit, op.chats


def _msg(chat_id: int, message_id: int, text: str, **kw: Any) -> Inbound:
    return Inbound(
        chat_id=chat_id,
        message_id=message_id,
        author_id=OFFICER.user_id,
        author_name=OFFICER.display_name,
        kind="text",
        text=text,
        **kw,
    )


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.transaction() as s:
        return list((await s.execute(select(model))).scalars())


async def _chat_row(db: Database, telegram_chat_id: int) -> Chat:
    async with db.reader() as s:
        found = (
            await s.execute(select(Chat).where(Chat.telegram_chat_id == telegram_chat_id))
        ).scalar_one()
        return found


async def test_without_the_setting_the_sender_gets_no_check(
    world: tuple[EnrollmentService, AuditChain, dict[str, int]], db: Database
) -> None:
    _enrollment, audit, chats = world
    translator = FakeTranslator()
    relay = RelayService(db, audit, translator)
    result = await relay.receive(_msg(chats["PNH-UDMO-2"], 10, "Nou bezwen ranfò."))
    assert result.deliveries == 3
    assert result.back_translations == {}
    assert [d.action for d in await _rows(db, Delivery)] == ["send"] * 3
    assert {t.target_language for t in await _rows(db, TranslationRow)} == {"fr", "en", "sw"}
    assert len(translator.calls) == 1  # no translation back


async def test_with_the_setting_the_sender_gets_what_partners_read_translated_back(
    world: tuple[EnrollmentService, AuditChain, dict[str, int]], db: Database
) -> None:
    enrollment, audit, chats = world
    source = chats["PNH-UDMO-2"]
    assert await enrollment.set_back_translate(
        ADMIN, chat_id=source, enabled=True, caller_is_chat_admin=False
    )
    translator = FakeTranslator()
    relay = RelayService(db, audit, translator)
    result = await relay.receive(_msg(source, 11, "Nou bezwen ranfò."))

    # Three copies for the partners, one check for the sender's group.
    assert result.deliveries == 4
    # Each partner language's text, read back into Kreyòl through the same port.
    assert sorted(translator.calls[1:]) == [
        ("[en] Nou bezwen ranfò.", ("ht",), "en"),
        ("[fr] Nou bezwen ranfò.", ("ht",), "fr"),
        ("[sw] Nou bezwen ranfò.", ("ht",), "sw"),
    ]
    rows = {t.target_language: t for t in await _rows(db, TranslationRow)}
    assert set(rows) == {"fr", "en", "sw", "fr>ht", "en>ht", "sw>ht"}
    assert rows["en>ht"].text == "[ht] [en] Nou bezwen ranfò."
    assert rows["en>ht"].revision == 0
    checks = [d for d in await _rows(db, Delivery) if d.action == "backcheck"]
    assert len(checks) == 1
    source_row = await _chat_row(db, source)
    assert checks[0].target_chat_id == source_row.id
    assert checks[0].target_language == "fr>ht,en>ht,sw>ht"
    events = await _rows(db, AuditEvent)
    made = [json.loads(e.payload)["target"] for e in events if e.event_type == "translation.made"]
    assert sorted(made) == ["en", "en>ht", "fr", "fr>ht", "sw", "sw>ht"]
    setting = [e for e in events if e.event_type == "chat.back_translate"]
    assert [json.loads(e.payload) for e in setting] == [
        {"chat_id": source, "enabled": True, "was": False}
    ]

    # The source group reads it as a reply to the original, in Kreyòl.
    copy = await CopyBuilder(db, load_i18n()).prepare(checks[0])
    assert copy is not None
    assert copy.telegram_chat_id == source
    assert copy.reply_to == 11
    assert copy.action == "backcheck"
    text = "\n".join(copy.parts)
    assert text.startswith("<b>Sa patnè yo li, tradwi tounen:</b>")
    assert "<i>en:</i> [ht] [en] Nou bezwen ranfò." in text
    assert "<i>sw:</i> [ht] [sw] Nou bezwen ranfò." in text


async def test_an_edit_reruns_the_check_and_edits_it(
    world: tuple[EnrollmentService, AuditChain, dict[str, int]], db: Database
) -> None:
    enrollment, audit, chats = world
    source = chats["KE-3"]
    await enrollment.set_back_translate(
        OFFICER, chat_id=source, enabled=True, caller_is_chat_admin=True
    )
    relay = RelayService(db, audit, FakeTranslator())
    await relay.receive(_msg(source, 12, "Roadblock cleared"))
    edited = await relay.receive(_msg(source, 12, "Roadblock NOT cleared", edited=True))
    assert edited.deliveries == 4
    rechecks = [d for d in await _rows(db, Delivery) if d.action == "rebackcheck"]
    assert [(d.revision, d.target_language) for d in rechecks] == [(1, "ht>en,fr>en,sw>en")]
    back = {t.target_language: t.text for t in await _rows(db, TranslationRow) if t.revision == 1}
    assert back["ht>en"] == "[en] [ht] Roadblock NOT cleared"
    # The first check was never posted here: the edit posts a fresh one instead.
    copy = await CopyBuilder(db, load_i18n()).prepare(rechecks[0])
    assert copy is not None
    assert copy.action == "backcheck"
    assert "<i>ht:</i> [en] [ht] Roadblock NOT cleared" in copy.parts[0]


async def test_a_failed_translation_back_shows_what_partners_read_with_a_warning(
    world: tuple[EnrollmentService, AuditChain, dict[str, int]], db: Database
) -> None:
    enrollment, audit, chats = world
    source = chats["PNH-UDMO-2"]
    await enrollment.set_back_translate(
        ADMIN, chat_id=source, enabled=True, caller_is_chat_admin=False
    )
    relay = RelayService(db, audit, BrokenBackwards())
    result = await relay.receive(_msg(source, 13, "Nou bezwen ranfò."))
    assert result.status == "queued"
    assert result.back_translations["en"].flags == ("no_model",)
    assert result.back_translations["fr"].text == "[ht] [fr] Nou bezwen ranfò."
    check = next(d for d in await _rows(db, Delivery) if d.action == "backcheck")
    copy = await CopyBuilder(db, load_i18n()).prepare(check)
    assert copy is not None
    text = "\n".join(copy.parts)
    assert "<i>en:</i> [en] Nou bezwen ranfò." in text
    assert "⚠️" in text


async def test_only_group_admins_change_the_setting_and_refusals_are_audited(
    world: tuple[EnrollmentService, AuditChain, dict[str, int]], db: Database
) -> None:
    enrollment, _audit, chats = world
    source = chats["KE-3"]
    with pytest.raises(AccessDenied):
        await enrollment.set_back_translate(
            OFFICER, chat_id=source, enabled=True, caller_is_chat_admin=False
        )
    assert (await _chat_row(db, source)).back_translate is False
    events = await _rows(db, AuditEvent)
    refused = [e for e in events if e.event_type == "access.refused"]
    assert [(e.actor, json.loads(e.payload)["reason"]) for e in refused] == [
        ("tg:2001", "backtranslate.not_group_admin")
    ]
    assert not [e for e in events if e.event_type == "chat.back_translate"]


async def test_in_a_mixed_group_an_edit_updates_the_annotation_and_the_check_separately(
    db: Database,
) -> None:
    audit = AuditChain()
    enrollment = EnrollmentService(db, audit, admin_ids=[ADMIN.user_id])
    op = await enroll_operation(enrollment, mixed=(-1005, "JOINT-1", "ht+en"))
    joint = op.chats["JOINT-1"]
    await enrollment.set_back_translate(
        ADMIN, chat_id=joint, enabled=True, caller_is_chat_admin=False
    )
    relay = RelayService(db, audit, FakeTranslator())
    await relay.receive(_msg(joint, 20, "ht: Nou bezwen ranfò"))
    first = {d.action: d for d in await _rows(db, Delivery)}
    # The group's two replies to the original, as the outbox would have recorded them.
    posted = {"annotate": 501, "backcheck": 502}
    async with db.transaction() as s:
        for action, telegram_id in posted.items():
            row = first[action]
            await MessageRepo(s).add_copy(
                Copy(
                    delivery_id=row.id,
                    message_id=row.message_id,
                    target_chat_id=row.target_chat_id,
                    telegram_chat_id=joint,
                    telegram_message_id=telegram_id,
                    part=0,
                    created_at=row.created_at,
                )
            )
    await relay.receive(_msg(joint, 20, "ht: Nou bezwen ranfò kounye a", edited=True))
    builder = CopyBuilder(db, load_i18n())
    edits = {d.action: d for d in await _rows(db, Delivery) if d.revision == 1}
    annotation = await builder.prepare(edits["reannotate"])
    check = await builder.prepare(edits["rebackcheck"])
    assert annotation is not None
    assert check is not None
    assert annotation.edit_ids == (501,)
    assert check.edit_ids == (502,)
    assert "[en] ht: Nou bezwen ranfò kounye a" in annotation.parts[0]
    assert "[ht] [en] ht: Nou bezwen ranfò kounye a" in check.parts[0]


class DoubtfulInto(FakeTranslator):
    """Like FakeTranslator, but its copies into `doubtful` are flagged as quality estimation
    would flag them, with what they say translated back."""

    def __init__(self, doubtful: dict[str, tuple[tuple[Flag, ...], str]]) -> None:
        super().__init__()
        self.doubtful = doubtful

    async def translate_many(
        self, text: str, targets: Sequence[str], *, source: str, glossary: Any = None
    ) -> list[Translation]:
        out = await super().translate_many(text, targets, source=source, glossary=glossary)
        return [
            replace(t, flags=self.doubtful[t.target][0], back_text=self.doubtful[t.target][1])
            if t.target in self.doubtful
            else replace(t, flags=(Flag.ROUND_TRIP_SIMILAR,), back_text=text)
            for t in out
        ]


async def test_a_doubtful_copy_tells_the_sender_which_units_and_what_they_read(
    world: tuple[EnrollmentService, AuditChain, dict[str, int]], db: Database
) -> None:
    _enrollment, audit, chats = world
    source = chats["PNH-UDMO-2"]  # the setting is off: the check comes because of the doubt
    translator = DoubtfulInto(
        {"sw": ((Flag.ROUND_TRIP_DIFFERENT,), "Nou bezwen dlo."), "en": ((Flag.NO_MODEL,), "x")}
    )
    relay = RelayService(db, audit, translator)
    result = await relay.receive(_msg(source, 14, "Nou bezwen ranfò."))
    assert result.deliveries == 4
    # The engine's own back-translation is reused: no second pass through the models.
    assert len(translator.calls) == 1
    check = next(d for d in await _rows(db, Delivery) if d.action == "backcheck")
    assert sorted(check.target_language.split(",")) == ["en>ht", "sw>ht"]
    copy = await CopyBuilder(db, load_i18n()).prepare(check)
    assert copy is not None
    assert copy.reply_to == 14
    text = "\n".join(copy.parts)
    assert text.startswith("<b>Patnè yo ka resevwa yon move tradiksyon mesaj ou a.")
    assert "<i>KE-SW-1 (ka gen erè):</i> Nou bezwen dlo." in text
    assert "<i>KE-3 (pa gen tradiksyon serye):</i> x" in text
    assert "fraz kout" in text  # the hint to rephrase
    assert "<i>fr" not in text  # the French copy was fine


async def test_an_unusable_copy_leads_with_the_original_and_marks_the_guess(
    world: tuple[EnrollmentService, AuditChain, dict[str, int]], db: Database
) -> None:
    _enrollment, audit, chats = world
    translator = DoubtfulInto(
        {
            "en": ((Flag.UNRELIABLE, Flag.ROUND_TRIP_DIFFERENT), "Nou bezwen dlo."),
            "fr": ((Flag.MEANING_CHANGED,), "Nou pa bezwen ranfò."),
        }
    )
    relay = RelayService(db, audit, translator)
    await relay.receive(_msg(chats["PNH-UDMO-2"], 15, "Nou bezwen ranfò."))
    builder = CopyBuilder(db, load_i18n())
    sends = [d for d in await _rows(db, Delivery) if d.action == "send"]
    copies = {d.target_language: await builder.prepare(d) for d in sends}
    english = "\n".join(copies["en"].parts)  # type: ignore[union-attr]
    warning = english.index("No reliable translation could be made.")
    original = english.index("Nou bezwen ranfò.")
    guess = english.index("Machine guess (unreliable): [en] Nou bezwen ranfò.")
    assert warning < original < guess
    french = "\n".join(copies["fr"].parts)  # type: ignore[union-attr]
    assert french.index("[fr] Nou bezwen ranfò.") < french.index(
        "Une négation, un nombre ou une direction a peut-être changé"
    )
    assert "expandable" in french  # the original, one tap away
    swahili = "\n".join(copies["sw"].parts)  # type: ignore[union-attr]
    assert "⚠️" not in swahili
