"""The auditor's `/log` and `/search` service on a real database (every backend)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.errors import AccessDenied, NotFound, UserInputError
from bot.services.audit_access import AuditAccess
from bot.services.enrollment import Caller
from storage.audit import READ_EVENT, AuditChain
from storage.audit_verify import verify_database
from storage.db import Database
from storage.models import (
    AuditEvent,
    Chat,
    Delivery,
    Message,
    Operation,
    Person,
    TranslationRow,
    Unit,
)

AUDITOR = Caller(user_id=7001, display_name="Inspector")
OFFICER = Caller(user_id=7002, display_name="Officer")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def access(db: Database) -> AuditAccess:
    async with db.transaction() as s:
        op = Operation(name="Kenscoff", glossary={})
        s.add(op)
        await s.flush()
        pnh = Unit(operation_id=op.id, code="PNH-UDMO-2", name="UDMO", side="PNH", language="ht")
        mss = Unit(operation_id=op.id, code="KE-3", name="Kenya 3", side="MSS", language="en")
        s.add_all([pnh, mss])
        await s.flush()
        c_pnh = Chat(
            telegram_chat_id=-1001, operation_id=op.id, unit_id=pnh.id, title="UDMO 2",
            languages="ht",
        )  # fmt: skip
        c_mss = Chat(
            telegram_chat_id=-1002, operation_id=op.id, unit_id=mss.id, title="Kenya 3",
            languages="en",
        )  # fmt: skip
        s.add_all([c_pnh, c_mss])
        s.add(Person(telegram_user_id=AUDITOR.user_id, role="auditor", operation_id=op.id))
        s.add(Person(telegram_user_id=OFFICER.user_id, role="officer", operation_id=op.id))
        await s.flush()
        texts = [
            (
                c_pnh,
                "ht",
                "Nou rive nan pòs Kenscoff 0700",
                "We reached Kenscoff post 0700",
            ),
            (c_mss, "en", "Roadblock on RN2 cleared", "Baraj sou RN2 retire"),
            (c_pnh, "ht", "Bezwen sipò nan Furcy", "Need support in Furcy"),
        ]
        for i, (chat, lang, original, translated) in enumerate(texts * 3):
            m = Message(
                operation_id=op.id,
                chat_id=chat.id,
                telegram_message_id=100 + i,
                author_user_id=5000 + i,
                author_name=f"Officer {i}",
                text=original,
                source_language=lang,
                created_at=NOW - timedelta(hours=9 - i),
            )
            s.add(m)
            await s.flush()
            target = "en" if lang == "ht" else "ht"
            other = c_mss if chat is c_pnh else c_pnh
            s.add(
                TranslationRow(
                    message_id=m.id, target_language=target, text=translated, route="direct",
                    models=["ht-en"], score=0.8, flags=[],
                )
            )  # fmt: skip
            s.add(
                Delivery(
                    message_id=m.id, target_chat_id=other.id, target_language=target,
                    state="sent", attempts=1,
                )
            )  # fmt: skip
    return AuditAccess(db, AuditChain(), clock=lambda: NOW)


async def _reads(db: Database) -> list[tuple[str, dict[str, object]]]:
    async with db.transaction() as s:
        rows = await s.execute(
            select(AuditEvent).where(AuditEvent.event_type == READ_EVENT).order_by(AuditEvent.seq)
        )
        return [(e.outcome, json.loads(e.payload)) for e in rows.scalars()]


async def test_log_pages_through_originals_and_delivered_translations(
    access: AuditAccess, db: Database
) -> None:
    page = await access.log(AUDITOR, chat_type="private", limit=4)
    assert len(page.entries) == 4
    first = page.entries[0]
    assert (first.original, first.language, first.unit) == (
        "Nou rive nan pòs Kenscoff 0700",
        "ht",
        "PNH-UDMO-2",
    )
    (tr,) = first.translations
    assert (tr.language, tr.text) == ("en", "We reached Kenscoff post 0700")
    assert [(d.chat_title, d.state) for d in tr.deliveries] == [("Kenya 3", "sent")]
    seen = [e.message_id for e in page.entries]
    while page.next_cursor is not None:
        page = await access.log(AUDITOR, chat_type="private", cursor=page.next_cursor, limit=4)
        seen += [e.message_id for e in page.entries]
    assert seen == sorted(seen)
    assert len(seen) == 9
    reads = await _reads(db)
    assert [outcome for outcome, _ in reads] == ["ok", "ok", "ok"]
    assert reads[0][1]["returned"] == 4
    assert (await verify_database(db, AuditChain())).ok


async def test_log_for_one_unit_and_a_time_window(access: AuditAccess) -> None:
    page = await access.log(AUDITOR, chat_type="private", args=["ke-3"], limit=20)
    assert {e.unit for e in page.entries} == {"KE-3"}
    assert len(page.entries) == 3
    since = (NOW - timedelta(hours=6, minutes=30)).isoformat()
    until = (NOW - timedelta(hours=3, minutes=30)).isoformat()
    page = await access.log(AUDITOR, chat_type="private", args=["-1001", since, until])
    assert [e.chat_title for e in page.entries] == ["UDMO 2", "UDMO 2"]
    page = await access.log(AUDITOR, chat_type="private", args=["2h"])
    assert len(page.entries) == 2  # the last two hours


async def test_search_finds_originals_and_translations(access: AuditAccess) -> None:
    page = await access.search(AUDITOR, chat_type="private", text="furcy", limit=20)
    assert len(page.entries) == 3
    page = await access.search(AUDITOR, chat_type="private", text="baraj sou", limit=20)
    assert [e.original for e in page.entries] == ["Roadblock on RN2 cleared"] * 3
    page = await access.search(AUDITOR, chat_type="private", text="100%", limit=20)
    assert page.entries == ()  # % is a character, not a wildcard


@pytest.mark.parametrize(
    ("caller", "chat_type", "reason"),
    [
        (OFFICER, "private", "audit.not_auditor"),
        (Caller(user_id=1, display_name="Stranger"), "private", "audit.not_auditor"),
        (AUDITOR, "supergroup", "audit.not_private"),
    ],
)
async def test_everyone_but_an_auditor_in_private_is_refused_and_it_is_audited(
    access: AuditAccess, db: Database, caller: Caller, chat_type: str, reason: str
) -> None:
    with pytest.raises(AccessDenied):
        await access.log(caller, chat_type=chat_type)
    with pytest.raises(AccessDenied):
        await access.search(caller, chat_type=chat_type, text="Furcy")
    reads = await _reads(db)
    assert [(o, p["command"], p["reason"]) for o, p in reads] == [
        ("refused", "log", reason),
        ("refused", "search", reason),
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["2026-13-40"], UserInputError),
        (["2026-11-26", "2026-11-01"], UserInputError),
        (["KE-3", "PNH-UDMO-2"], UserInputError),
        (["1d", "2d", "3d"], UserInputError),
        (["PNH-9"], NotFound),
    ],
)
async def test_bad_log_arguments_are_refused_and_audited(
    access: AuditAccess, db: Database, args: list[str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await access.log(AUDITOR, chat_type="private", args=args)
    reads = await _reads(db)
    assert [o for o, _ in reads] == ["rejected"]


async def test_a_too_short_search_is_refused(access: AuditAccess) -> None:
    with pytest.raises(UserInputError):
        await access.search(AUDITOR, chat_type="private", text=" a ")
