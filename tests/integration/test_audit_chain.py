"""The audit chain in a real database (every backend): guards, purge, verification, export."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from storage.audit import PURGE_EVENT, AuditChain, read_head
from storage.audit_export import write_export
from storage.audit_read import EventFilter, iter_records
from storage.audit_retention import purge_before
from storage.audit_verify import Anchor, read_jsonl, verify_database, verify_records
from storage.db import Database
from storage.models import AuditEvent

CHAIN = AuditChain(key=b"test-key")
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


async def _fill(db: Database, n: int, *, chain: AuditChain = CHAIN) -> None:
    for i in range(n):
        async with db.transaction() as s:
            await chain.append(
                s,
                component="relay",
                event_type="message.in",
                actor=f"tg:{2000 + i % 3}",
                operation_id=1 + i % 2,
                payload={"text": f"Patwouy {i} Kenscoff — ñ", "chat_id": -1001 - i % 2},
                ts=T0 + timedelta(hours=i),
            )


async def _disable_guards(db: Database) -> None:
    """What an attacker with database access does first."""
    async with db.transaction() as s:
        if db.dialect == "sqlite":
            for name in ("audit_events_no_update", "audit_events_no_delete"):
                await s.execute(text(f"DROP TRIGGER {name}"))
            await s.execute(text("DROP TRIGGER audit_head_forward_only"))
        else:
            await s.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            await s.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))


async def test_appended_events_verify_and_the_head_matches(db: Database) -> None:
    await _fill(db, 25)
    result = await verify_database(db, CHAIN)
    assert result.ok, result.describe()
    async with db.transaction() as s:
        head = await read_head(s)
    assert (result.count, result.last_seq, result.head_hash) == (25, 25, head.hash)
    assert (await verify_database(db, CHAIN, expect=Anchor(head.hash, head.seq))).ok


async def test_times_in_other_zones_hash_as_they_read_back(db: Database) -> None:
    from datetime import timezone

    async with db.transaction() as s:
        await CHAIN.append(
            s,
            component="relay",
            event_type="message.in",
            actor="tg:1",
            ts=datetime(2026, 11, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
        )
    assert (await verify_database(db, CHAIN)).ok


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET actor = 'tg:1' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 2",
        "DELETE FROM audit_events",
        "UPDATE audit_head SET seq = 1",
        "DELETE FROM audit_head",
    ],
)
async def test_the_database_refuses_to_rewrite_history(db: Database, sql: str) -> None:
    await _fill(db, 3)
    with pytest.raises(DBAPIError, match=r"append-only|only moves forward"):
        async with db.transaction() as s:
            await s.execute(text(sql))
    assert (await verify_database(db, CHAIN)).ok


async def test_purge_removes_a_prefix_records_it_and_the_rest_still_verifies(
    db: Database,
) -> None:
    await _fill(db, 30)
    before = T0 + timedelta(hours=12)
    dry = await purge_before(db, CHAIN, before, actor="cli:ops", dry_run=True)
    assert (dry.plan.count, dry.event_seq) == (12, None)
    done = await purge_before(db, CHAIN, before, actor="cli:ops", retention_days=90)
    assert (done.plan.first_seq, done.plan.through_seq, done.plan.count) == (1, 12, 12)
    async with db.transaction() as s:
        first = (await s.execute(select(func.min(AuditEvent.seq)))).scalar_one()
        event = (
            await s.execute(select(AuditEvent).where(AuditEvent.event_type == PURGE_EVENT))
        ).scalar_one()
    assert first == 13
    payload = json.loads(event.payload)
    assert payload["through_seq"] == 12
    assert payload["through_hash"] == done.plan.through_hash
    assert (event.actor, event.seq) == ("cli:ops", 31)
    result = await verify_database(db, CHAIN)
    assert result.ok, result.describe()
    assert (result.first_seq, result.anchored_at, result.count) == (13, 12, 19)
    # The gate closed again: the rows that remain are protected as before.
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.transaction() as s:
            await s.execute(text("DELETE FROM audit_events WHERE seq = 13"))
    # Purging again later keeps verifying (anchored at the newer cut).
    await purge_before(db, CHAIN, before + timedelta(hours=5), actor="cli:ops")
    result = await verify_database(db, CHAIN)
    assert result.ok, result.describe()
    assert result.anchored_at == 17


async def test_purging_every_event_leaves_a_verifiable_purge_record(db: Database) -> None:
    await _fill(db, 5)
    done = await purge_before(db, CHAIN, T0 + timedelta(days=1), actor="cli:ops")
    assert (done.plan.count, done.event_seq) == (5, 6)
    result = await verify_database(db, CHAIN)
    assert result.ok, result.describe()
    assert (result.count, result.first_seq, result.anchored_at) == (1, 6, 5)


async def test_purge_with_nothing_old_enough_changes_nothing(db: Database) -> None:
    await _fill(db, 3)
    result = await purge_before(db, CHAIN, T0 - timedelta(days=1), actor="cli:ops")
    assert (result.plan.count, result.event_seq) == (0, None)
    async with db.transaction() as s:
        assert (await read_head(s)).seq == 3


async def test_deleting_after_a_purge_beyond_its_anchor_is_caught(db: Database) -> None:
    await _fill(db, 10)
    await purge_before(db, CHAIN, T0 + timedelta(hours=4), actor="cli:ops")
    await _disable_guards(db)
    async with db.transaction() as s:
        await s.execute(text("DELETE FROM audit_events WHERE seq IN (5, 6)"))
    result = await verify_database(db, CHAIN)
    assert result.broken is not None
    assert (result.broken.kind, result.broken.seq) == ("missing", 5)


@pytest.mark.parametrize(
    ("sql", "kind", "seq"),
    [
        ('UPDATE audit_events SET payload = \'{"text":"forged"}\' WHERE seq = 4', "changed", 4),
        ("UPDATE audit_events SET outcome = 'refused' WHERE seq = 9", "changed", 9),
        ("DELETE FROM audit_events WHERE seq = 5", "missing", 5),
        ("DELETE FROM audit_events WHERE seq >= 7", "truncated", 7),
        ("UPDATE audit_events SET seq = -seq WHERE seq IN (3, 6)", "reordered", 3),
    ],
)
async def test_tampering_around_the_guards_is_found(
    db: Database, sql: str, kind: str, seq: int
) -> None:
    await _fill(db, 10)
    await _disable_guards(db)
    async with db.transaction() as s:
        await s.execute(text(sql))
        if "-seq" in sql:  # finish the swap: 3 <-> 6
            await s.execute(text("UPDATE audit_events SET seq = 6 WHERE seq = -3"))
            await s.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = -6"))
    result = await verify_database(db, CHAIN)
    assert result.broken is not None
    assert (result.broken.kind, result.broken.seq) == (kind, seq)


async def test_a_rewound_head_needs_the_external_anchor(db: Database) -> None:
    await _fill(db, 10)
    async with db.transaction() as s:
        anchor = await read_head(s)
        h7 = (await s.execute(select(AuditEvent.hash).where(AuditEvent.seq == 7))).scalar_one()
    await _disable_guards(db)
    async with db.transaction() as s:
        await s.execute(text("DELETE FROM audit_events WHERE seq > 7"))
        await s.execute(text("UPDATE audit_head SET seq = 7, hash = :h"), {"h": h7})
    assert (await verify_database(db, CHAIN)).ok  # consistent inside the database…
    result = await verify_database(db, CHAIN, expect=Anchor(anchor.hash))
    assert result.broken is not None  # …but not with the head kept elsewhere
    assert (result.broken.kind, result.broken.seq) == ("truncated", 8)


async def test_an_event_appended_behind_the_chains_back_is_inserted(db: Database) -> None:
    await _fill(db, 5, chain=AuditChain())
    async with db.transaction() as s:
        last = (await s.execute(select(AuditEvent).where(AuditEvent.seq == 5))).scalar_one()
        from storage.audit import event_body

        body = event_body(
            seq=6,
            ts=last.ts + timedelta(minutes=1),
            component="relay",
            event_type="message.in",
            actor="tg:666",
            outcome="ok",
            operation_id=1,
            payload="{}",
        )
        forged = AuditEvent(
            seq=6,
            ts=last.ts + timedelta(minutes=1),
            component="relay",
            event_type="message.in",
            actor="tg:666",
            outcome="ok",
            operation_id=1,
            payload="{}",
            prev_hash=last.hash,
            hash=AuditChain().link(last.hash, body),
        )
        s.add(forged)
    result = await verify_database(db, AuditChain())
    assert result.broken is not None
    assert (result.broken.kind, result.broken.seq) == ("inserted", 6)


async def test_export_streams_filters_and_the_jsonl_verifies(db: Database) -> None:
    await _fill(db, 20)
    out = io.StringIO()
    count = await write_export(iter_records(db, EventFilter(), chunk=7), out, "jsonl")
    assert count == 20
    lines = out.getvalue().splitlines()
    assert verify_records(read_jsonl(lines), CHAIN).ok
    assert json.loads(lines[0])["payload"] == '{"chat_id":-1001,"text":"Patwouy 0 Kenscoff — ñ"}'

    op2 = io.StringIO()
    n = await write_export(iter_records(db, EventFilter(operation_id=2), chunk=3), op2, "jsonl")
    assert n == 10
    assert {json.loads(x)["operation_id"] for x in op2.getvalue().splitlines()} == {2}
    assert verify_records(read_jsonl(op2.getvalue().splitlines()), CHAIN, partial=True).ok

    window = EventFilter(since=T0 + timedelta(hours=5), until=T0 + timedelta(hours=8))
    csv_out = io.StringIO()
    assert await write_export(iter_records(db, window), csv_out, "csv") == 3
    rows = csv_out.getvalue().splitlines()
    assert rows[0].startswith("seq,ts,component")
    assert rows[1].startswith("6,2026-11-01T13:00:00.000000+00:00,relay")
