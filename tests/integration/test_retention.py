"""Retention on a real database (every backend): what goes, what stays, what the log shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.services.audit_access import AuditAccess
from bot.services.enrollment import Caller
from storage.audit import AuditChain
from storage.audit_verify import verify_database
from storage.db import Database
from storage.models import (
    AuditEvent,
    Chat,
    InboxUpdate,
    Message,
    Operation,
    Person,
    TranslationRow,
    Unit,
)
from storage.retention import PURGE_EVENT, RetentionPolicy, apply_retention

CHAIN = AuditChain(key=b"retention-test-key")
# Relative to the real time: `daraja db purge` below uses the clock.
NOW = datetime.now(UTC).replace(microsecond=0)
AUDITOR = Caller(user_id=7001, display_name="Inspector")


@pytest.fixture
async def seeded(db: Database) -> Database:
    """Messages 40, 20 and 2 days old (the 40-day one edited 1 day ago), each translated;
    inbox updates processed 30 and 1 days ago, and one never processed."""
    async with db.transaction() as s:
        op = Operation(name="Kenscoff", glossary={})
        s.add(op)
        await s.flush()
        unit = Unit(operation_id=op.id, code="PNH-1", name="PNH", side="PNH", language="ht")
        s.add(unit)
        await s.flush()
        chat = Chat(
            telegram_chat_id=-1001, operation_id=op.id, unit_id=unit.id, title="PNH 1",
            languages="ht",
        )  # fmt: skip
        s.add(chat)
        s.add(Person(telegram_user_id=AUDITOR.user_id, role="auditor", operation_id=op.id))
        await s.flush()
        for i, (age, edited) in enumerate(((40, 1), (20, None), (2, None), (45, None))):
            m = Message(
                operation_id=op.id,
                chat_id=chat.id,
                telegram_message_id=100 + i,
                author_user_id=5000 + i,
                author_name=f"Officer {i}",
                text=f"Mesaj {i}: patwouy la rive",
                media={"kind": "photo", "caption": "kafou"} if i == 3 else None,
                source_language="ht",
                created_at=NOW - timedelta(days=age),
                edited_at=NOW - timedelta(days=edited) if edited else None,
            )
            s.add(m)
            await s.flush()
            s.add(
                TranslationRow(
                    message_id=m.id, target_language="en", text=f"Message {i}: patrol arrived",
                    route="direct", models=["ht-en"], score=0.8, flags=[],
                    created_at=NOW - timedelta(days=age),
                )
            )  # fmt: skip
        for update_id, state, processed in (
            (1, "done", NOW - timedelta(days=30)),
            (2, "failed", NOW - timedelta(days=30)),
            (3, "done", NOW - timedelta(days=1)),
            (4, "new", None),
        ):
            s.add(
                InboxUpdate(
                    update_id=update_id,
                    payload=json.dumps({"update_id": update_id, "message": {"text": "/join X"}}),
                    received_at=NOW - timedelta(days=31),
                    processed_at=processed,
                    state=state,
                )
            )
    return db


async def _messages(db: Database) -> dict[int, Message]:
    async with db.transaction() as s:
        rows = (await s.execute(select(Message).order_by(Message.id))).scalars()
        return {m.telegram_message_id - 100: m for m in rows}


async def _translations(db: Database) -> dict[int, str]:
    async with db.transaction() as s:
        rows = (await s.execute(select(TranslationRow).order_by(TranslationRow.id))).scalars()
        return {t.message_id: t.text for t in rows}


async def _events(db: Database) -> list[dict[str, object]]:
    async with db.transaction() as s:
        rows = await s.execute(
            select(AuditEvent).where(AuditEvent.event_type == PURGE_EVENT).order_by(AuditEvent.seq)
        )
        return [json.loads(e.payload) | {"actor": e.actor} for e in rows.scalars()]


async def test_the_default_policy_purges_only_old_processed_inbox_updates(
    seeded: Database,
) -> None:
    (inbox,) = await apply_retention(seeded, CHAIN, RetentionPolicy(), NOW)
    assert (inbox.kind, inbox.count, inbox.first_id, inbox.last_id) == ("inbox", 2, 1, 2)
    async with seeded.transaction() as s:
        left = (await s.execute(select(InboxUpdate.update_id))).scalars()
        assert sorted(left) == [3, 4]  # recent, and never processed
    # Messages are kept by default.
    assert all(m.purged_at is None and m.text for m in (await _messages(seeded)).values())
    (event,) = await _events(seeded)
    assert (event["kind"], event["count"], event["actor"]) == ("inbox", 2, "daraja")
    assert (await verify_database(seeded, CHAIN)).ok


async def test_message_retention_empties_bodies_keeps_metadata_and_is_audited(
    seeded: Database,
) -> None:
    policy = RetentionPolicy(inbox_days=None, message_days=14)
    dry = await apply_retention(seeded, CHAIN, policy, NOW, dry_run=True)
    assert [(p.kind, p.count, p.translations) for p in dry] == [("messages", 2, 2)]
    assert await _events(seeded) == []

    (done,) = await apply_retention(seeded, CHAIN, policy, NOW, actor="os:ops")
    assert (done.count, done.translations) == (2, 2)
    messages = await _messages(seeded)
    # 20 and 45 days old go; 40 days old but edited yesterday, and 2 days old, stay.
    assert {i for i, m in messages.items() if m.purged_at is not None} == {1, 3}
    for i in (1, 3):
        m = messages[i]
        assert (m.text, m.media, m.entities) == ("", None, None)
        assert (m.author_name, m.source_language) == (f"Officer {i}", "ht")
    assert messages[0].text == "Mesaj 0: patwouy la rive"
    texts = await _translations(seeded)
    assert texts[messages[1].id] == ""
    assert texts[messages[3].id] == ""
    assert texts[messages[0].id] == "Message 0: patrol arrived"

    (event,) = await _events(seeded)
    assert event["kind"] == "messages"
    assert (event["count"], event["translations"], event["actor"]) == (2, 2, "os:ops")
    assert len(str(event["sha256"])) == 64
    assert done.anchors
    assert done.anchors[0].split(":")[0].isdigit()
    assert (await verify_database(seeded, CHAIN)).ok
    # A second run finds nothing more to do and records nothing.
    (again,) = await apply_retention(seeded, CHAIN, policy, NOW)
    assert again.count == 0
    assert len(await _events(seeded)) == 1


async def test_a_purged_message_in_the_log_keeps_who_when_and_where(seeded: Database) -> None:
    await apply_retention(seeded, CHAIN, RetentionPolicy(inbox_days=None, message_days=14), NOW)
    access = AuditAccess(seeded, CHAIN, clock=lambda: NOW)
    page = await access.log(AUDITOR, chat_type="private", limit=10)
    by_author = {e.author_name: e for e in page.entries}
    purged = by_author["Officer 1"]
    assert purged.purged_at is not None
    assert purged.original == ""
    assert [t.purged_at is not None for t in purged.translations] == [True]
    assert (purged.unit, purged.chat_title) == ("PNH-1", "PNH 1")
    kept = by_author["Officer 2"]
    assert (kept.purged_at, kept.original) == (None, "Mesaj 2: patwouy la rive")


async def test_translation_retention_alone_keeps_the_originals(seeded: Database) -> None:
    policy = RetentionPolicy(inbox_days=None, translation_days=10)
    (done,) = await apply_retention(seeded, CHAIN, policy, NOW)
    assert (done.kind, done.count) == ("translations", 3)  # 45, 40 and 20 days old
    messages = await _messages(seeded)
    assert all(m.purged_at is None and m.text for m in messages.values())
    texts = await _translations(seeded)
    assert [texts[messages[i].id] for i in range(4)] == ["", "", "Message 2: patrol arrived", ""]
    assert (await verify_database(seeded, CHAIN)).ok


async def test_db_purge_command_dry_run_then_purge(
    seeded: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import os
    import pwd

    from bot.cli import main

    monkeypatch.setenv("DARAJA_DATABASE_URL", seeded.url)
    monkeypatch.setenv("DARAJA_AUDIT_HMAC_KEY", "retention-test-key")
    monkeypatch.setenv("DARAJA_MESSAGE_RETENTION_DAYS", "14")
    assert await asyncio.to_thread(main, ["db", "purge", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] is True
    assert [(p["kind"], p["purged"]) for p in dry["purges"]] == [("inbox", 2), ("messages", 2)]
    assert await _events(seeded) == []
    assert await asyncio.to_thread(main, ["db", "purge"]) == 0
    out = capsys.readouterr().out
    assert "purged messages: 2 older than 14 days" in out
    assert "the audit log keeps its own copy" in out  # no audit retention is set
    events = await _events(seeded)
    assert {e["actor"] for e in events} == {f"os:{pwd.getpwuid(os.getuid()).pw_name}"}
    assert (await verify_database(seeded, CHAIN)).ok
