"""The same storage behaviour on SQLite and PostgreSQL: round trips, ids, times, constraints,
and a gap-free audit chain under concurrent writers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from storage.audit import GENESIS, AuditChain, PendingEvent, event_body
from storage.db import Database
from storage.errors import MESSAGE_SOURCE, UNIQUE, Duplicate
from storage.models import (
    AuditEvent,
    AuditHead,
    Chat,
    Delivery,
    EnrollmentCode,
    InboxUpdate,
    Message,
    Operation,
    Person,
    TranslationRow,
    Unit,
)
from storage.relay_rows import RelayRepo, Target, TranslationRecord
from tests.support.db_seed import SUPERGROUP_ID, seed_operation

HAITI = timezone(timedelta(hours=-5))
# Microseconds on purpose: both backends must keep them.
WHEN = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


async def test_every_table_round_trips(db: Database) -> None:
    async with db.transaction() as s:
        op = Operation(name="Artibonite-2", glossary={"Pòtoprens": "Port-au-Prince"})
        s.add(op)
        await s.flush()
        unit = Unit(operation_id=op.id, code="MSS-K2", name="Kenya 2", side="MSS", language="sw")
        s.add(unit)
        await s.flush()
        chat = Chat(
            telegram_chat_id=SUPERGROUP_ID,
            operation_id=op.id,
            unit_id=unit.id,
            title="MSS Kenya 2 🇰🇪",
            languages="sw,en",
            enrolled_at=WHEN,
        )
        person = Person(
            telegram_user_id=7_123_456_789,
            display_name="Wanjiru",
            role="commander",
            language="sw",
            operation_id=op.id,
            unit_id=unit.id,
        )
        code = EnrollmentCode(
            code_hash="ab" * 32,
            kind="person",
            operation_id=op.id,
            unit_id=unit.id,
            role="officer",
            language="sw",
            expires_at=WHEN.astimezone(HAITI),
        )
        inbox = InboxUpdate(update_id=9_876_543_210, payload='{"update_id": 9876543210}')
        s.add_all([chat, person, code, inbox])
        await s.flush()
        msg = Message(
            operation_id=op.id,
            chat_id=chat.id,
            telegram_message_id=4_294_967_297,
            update_id=9_876_543_210,
            author_user_id=7_123_456_789,
            text="Tuko Kenscoff saa 14:30",
            entities=[{"type": "bold", "offset": 0, "length": 4}],
            source_language="sw",
            created_at=WHEN,
        )
        s.add(msg)
        await s.flush()
        tr = TranslationRow(
            message_id=msg.id,
            target_language="fr",
            text="Nous sommes à Kenscoff à 14:30",
            route="pivot",
            models=["sw-en", "en-fr"],
            score=0.87,
            flags=["pivot"],
        )
        dl = Delivery(
            message_id=msg.id,
            target_chat_id=chat.id,
            target_language="fr",
            not_before=WHEN,
            telegram_message_ids=[2_147_483_648],
        )
        s.add_all([tr, dl])
        ids = {"op": op.id, "chat": chat.id, "msg": msg.id}

    async with db.transaction() as s:
        op2 = await s.get_one(Operation, ids["op"])
        assert op2.glossary == {"Pòtoprens": "Port-au-Prince"}
        chat2 = (await s.scalars(select(Chat).where(Chat.telegram_chat_id == SUPERGROUP_ID))).one()
        assert (chat2.title, chat2.language_list) == ("MSS Kenya 2 🇰🇪", ["sw", "en"])
        assert chat2.enrolled_at == WHEN
        person2 = (await s.scalars(select(Person))).one()
        assert (person2.telegram_user_id, person2.role) == (7_123_456_789, "commander")
        code2 = (await s.scalars(select(EnrollmentCode))).one()
        # Written in Haiti's offset, read back as the same instant in UTC.
        assert code2.expires_at == WHEN
        assert code2.expires_at.utcoffset() == timedelta(0)
        assert code2.used_at is None
        inbox2 = await s.get_one(InboxUpdate, 9_876_543_210)
        assert inbox2.state == "new"
        assert inbox2.received_at.tzinfo is not None
        msg2 = await s.get_one(Message, ids["msg"])
        assert msg2.telegram_message_id == 4_294_967_297
        assert msg2.entities == [{"type": "bold", "offset": 0, "length": 4}]
        assert msg2.created_at == WHEN
        tr2 = (await s.scalars(select(TranslationRow))).one()
        assert (tr2.models, tr2.flags, tr2.score) == (["sw-en", "en-fr"], ["pivot"], 0.87)
        dl2 = (await s.scalars(select(Delivery))).one()
        assert (dl2.state, dl2.attempts, dl2.action) == ("pending", 0, "send")
        assert dl2.not_before == WHEN
        assert dl2.telegram_message_ids == [2_147_483_648]


async def test_times_come_back_aware_utc_and_comparable(db: Database) -> None:
    async with db.transaction() as s:
        seeded = await seed_operation(s)
        s.add(
            Delivery(
                message_id=seeded.message_id,
                target_chat_id=seeded.chat_ids[1],
                target_language="en",
                not_before=WHEN.astimezone(HAITI),
            )
        )
    async with db.transaction() as s:
        # A query with an aware bound in another offset compares instants, not wall clocks.
        due = await s.scalars(
            select(Delivery).where(Delivery.not_before <= (WHEN + timedelta(microseconds=1)))
        )
        row = due.one()
        assert row.not_before == WHEN
        assert row.not_before is not None
        assert row.not_before.tzinfo == UTC
        early = await s.scalars(
            select(Delivery).where(Delivery.not_before < WHEN.astimezone(HAITI))
        )
        assert early.all() == []


async def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with db.transaction() as s:
            s.add(Operation(name="naive", created_at=datetime(2026, 1, 1, 12, 0)))


async def test_telegram_ids_beyond_32_bits_survive_and_match(db: Database) -> None:
    async with db.transaction() as s:
        await seed_operation(s, chats=3)
    async with db.transaction() as s:
        found = await s.scalars(
            select(Chat.telegram_chat_id)
            .where(Chat.telegram_chat_id <= SUPERGROUP_ID)
            .order_by(Chat.telegram_chat_id.desc())
        )
        assert found.all() == [SUPERGROUP_ID, SUPERGROUP_ID - 1, SUPERGROUP_ID - 2]
        author = await s.scalar(select(Message.author_user_id))
        assert author == 7_000_000_001


async def _insert_in_one_transaction(db: Database, *rows: object) -> None:
    async with db.transaction() as s:
        for row in rows:
            s.add(row)
            await s.flush()


async def test_unique_constraints_reject_duplicates_and_roll_back(db: Database) -> None:
    async with db.transaction() as s:
        seeded = await seed_operation(s)

    with pytest.raises(IntegrityError):  # same Telegram chat twice
        await _insert_in_one_transaction(
            db,
            Operation(name="Kenscoff-2"),  # fine alone; must be rolled back with the rest
            Chat(telegram_chat_id=SUPERGROUP_ID, operation_id=seeded.operation_id, languages="fr"),
        )
    # Same Telegram message of one chat twice: a replay, named as such on both backends.
    with pytest.raises(Duplicate) as replay:
        await _insert_in_one_transaction(
            db,
            Message(
                operation_id=seeded.operation_id,
                chat_id=seeded.chat_ids[0],
                telegram_message_id=1,
                text="dup",
            ),
        )
    assert replay.value.constraint == MESSAGE_SOURCE
    with pytest.raises(IntegrityError):  # unit code reused within an operation
        await _insert_in_one_transaction(
            db,
            Unit(
                operation_id=seeded.operation_id,
                code="PNH-1",
                name="again",
                side="PNH",
                language="fr",
            ),
        )
    with pytest.raises(IntegrityError):  # foreign keys are enforced on SQLite too
        await _insert_in_one_transaction(
            db, Unit(operation_id=999, code="X", name="x", side="PNH", language="fr")
        )

    async with db.transaction() as s:
        names = list(await s.scalars(select(Operation.name)))
        chats = list(await s.scalars(select(Chat.telegram_chat_id)))
    assert names == ["Kenscoff-1"]
    assert sorted(chats) == [SUPERGROUP_ID - 1, SUPERGROUP_ID]


async def _assert_gap_free(db: Database, chain: AuditChain, expected: int) -> list[AuditEvent]:
    async with db.transaction() as s:
        events = list(await s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        head = await s.get_one(AuditHead, 1)
    assert [e.seq for e in events] == list(range(1, expected + 1))
    prev = GENESIS
    for e in events:
        assert e.prev_hash == prev
        body = event_body(
            seq=e.seq,
            ts=e.ts,
            component=e.component,
            event_type=e.event_type,
            actor=e.actor,
            outcome=e.outcome,
            operation_id=e.operation_id,
            payload=e.payload,
        )
        # Recomputed from what the database returns: times and text survived exactly.
        assert chain.link(prev, body) == e.hash
        prev = e.hash
    assert (head.seq, head.hash) == (expected, prev)
    return events


async def test_concurrent_audit_appends_form_one_gap_free_chain(db: Database) -> None:
    chain = AuditChain()
    per_writer = 8

    async def writer(name: str) -> None:
        for i in range(per_writer):
            # A separate session and transaction per event, like separate requests.
            async with db.transaction() as s:
                await chain.append(
                    s,
                    component="relay",
                    event_type="message.recorded",
                    actor=name,
                    payload={"i": i, "text_len": 24},
                )
                await asyncio.sleep(0)  # let the other writer try to append meanwhile

    await asyncio.gather(writer("worker-a"), writer("worker-b"), writer("worker-c"))
    events = await _assert_gap_free(db, chain, 3 * per_writer)
    assert {e.actor for e in events} == {"worker-a", "worker-b", "worker-c"}


async def test_audit_append_waits_for_a_writer_holding_the_head(db: Database) -> None:
    # One transaction appends and keeps its transaction open; another appends meanwhile.
    # The second must queue behind the first (row lock / write lock), not fork the chain.
    chain = AuditChain(key=b"k" * 32)
    first_appended = asyncio.Event()
    release_first = asyncio.Event()

    async def holder() -> None:
        async with db.transaction() as s:
            await chain.append(s, component="cli", event_type="op.created", actor="admin")
            first_appended.set()
            await release_first.wait()
            await chain.append(s, component="cli", event_type="unit.created", actor="admin")

    async def latecomer() -> None:
        await first_appended.wait()
        async with db.transaction() as s:
            await chain.append(s, component="bot", event_type="chat.enrolled", actor="officer")

    holding = asyncio.create_task(holder())
    late = asyncio.create_task(latecomer())
    await first_appended.wait()
    await asyncio.sleep(0.2)  # give the latecomer time to reach the lock (not an assertion)
    assert not late.done()
    release_first.set()
    await asyncio.gather(holding, late)
    events = await _assert_gap_free(db, chain, 3)
    assert [e.event_type for e in events] == ["op.created", "unit.created", "chat.enrolled"]


async def test_one_session_reused_across_transactions_keeps_the_chain(db: Database) -> None:
    # A long-lived session (expire_on_commit=False) has the head row in its identity map; the
    # next append must use the head as it is now, after other writers moved it.
    chain = AuditChain()
    async with db.sessions() as long_lived:
        async with long_lived.begin():
            await chain.append(long_lived, component="bot", event_type="a", actor="x")
        async with db.transaction() as other:
            await chain.append(other, component="bot", event_type="b", actor="y")
        async with long_lived.begin():
            await chain.append(long_lived, component="bot", event_type="c", actor="x")
    await _assert_gap_free(db, chain, 3)


async def test_every_named_constraint_exists_as_the_seam_names_it(db: Database) -> None:
    """`storage.errors` recognises a violation by PostgreSQL's constraint name or by SQLite's
    column list: both must match what the migrations created, or a replay would go unseen."""

    def uniques(conn: object) -> dict[str, list[tuple[str | None, tuple[str, ...]]]]:
        insp = inspect(conn)
        return {
            table: [
                (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)
            ]
            for table in {t for t, _ in UNIQUE.values()}
        }

    async with db.engine.connect() as conn:
        found = await conn.run_sync(uniques)
    for name, (table, columns) in UNIQUE.items():
        assert columns in [cols for _, cols in found[table]], name
        if db.dialect == "postgresql":
            assert (name, columns) in found[table]


async def test_recording_copies_waits_for_the_head_and_keeps_outbox_order(db: Database) -> None:
    # Recording a message's copies takes the audit head with its outbox rows (PostgreSQL: one
    # statement): while another transaction holds the head it waits, then extends the chain
    # after that transaction's events; its outbox rows keep the order they were given in.
    chain = AuditChain(key=b"k" * 32)
    async with db.transaction() as s:
        seeded = await seed_operation(s, chats=4)
        message = await s.get_one(Message, seeded.message_id)
    targets = [Target(chat_id, "en") for chat_id in reversed(seeded.chat_ids[1:])]
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with db.transaction() as s:
            await chain.append(s, component="cli", event_type="op.created", actor="admin")
            held.set()
            await release.wait()

    async def recorder() -> int:
        await held.wait()
        async with db.transaction() as s:
            return await RelayRepo(s, chain).record_copies(
                message=message,
                translations={"en": TranslationRecord("We need help.", "direct", ["m"], 0.9, [])},
                targets=targets,
                now=WHEN,
                lead_events=[
                    PendingEvent(component="relay", event_type="message.received", actor="x")
                ],
            )

    holding = asyncio.create_task(holder())
    recording = asyncio.create_task(recorder())
    await held.wait()
    await asyncio.sleep(0.2)  # give the recorder time to reach the lock (not an assertion)
    assert not recording.done()
    release.set()
    await holding
    assert await recording == len(targets)
    events = await _assert_gap_free(db, chain, 3)
    assert [e.event_type for e in events] == ["op.created", "message.received", "translation.made"]
    async with db.transaction() as s:
        rows = list(
            await s.scalars(
                select(Delivery).where(Delivery.message_id == message.id).order_by(Delivery.id)
            )
        )
    assert [r.target_chat_id for r in rows] == [t.id for t in targets]
    assert all(r.state == "pending" and r.created_at == WHEN and not r.ambiguous for r in rows)
