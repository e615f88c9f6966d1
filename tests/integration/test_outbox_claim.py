"""Outbox claiming: oldest first, one copy in flight per chat, never the same row twice."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from storage.audit import AuditChain, PendingEvent
from storage.audit_verify import verify_database
from storage.db import Database
from storage.models import AuditEvent, AuditHead, Copy, Delivery, Message
from storage.outbox_claim import (
    claim_deliveries,
    claim_then_audit_sync,
    finish_claim_audit_at_head_sync,
    finish_claim_audit_sync,
)
from tests.support.db_seed import SUPERGROUP_ID, seed_operation
from tests.support.postgres import fresh_database_url

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def _outbox(db: Database, plan: list[tuple[int, datetime | None]]) -> list[tuple[int, int]]:
    """Write one delivery per (target chat index, not_before); return (id, chat id) in order."""
    async with db.transaction() as s:
        seeded = await seed_operation(s, chats=5)
        rows = []
        for n, (chat_index, not_before) in enumerate(plan):
            source = Message(
                operation_id=seeded.operation_id,
                chat_id=seeded.chat_ids[0],
                telegram_message_id=100 + n,
                text=f"message {n}",
            )
            s.add(source)
            await s.flush()
            row = Delivery(
                message_id=source.id,
                target_chat_id=seeded.chat_ids[chat_index],
                target_language="en",
                not_before=not_before,
            )
            s.add(row)
            await s.flush()
            rows.append((row.id, row.target_chat_id))
    return rows


async def _claim(db: Database, worker: str, limit: int = 10, now: datetime = NOW) -> list[int]:
    async with db.transaction() as s:
        claimed = await claim_deliveries(s, worker_id=worker, limit=limit, now=now)
        assert all(d.state == "sending" and d.claimed_by == worker for d in claimed)
        return [d.id for d in claimed]


async def _finish(db: Database, delivery_id: int, state: str = "sent") -> None:
    async with db.transaction() as s:
        await s.execute(update(Delivery).where(Delivery.id == delivery_id).values(state=state))


async def test_claims_oldest_due_row_of_each_chat_and_keeps_chat_order(db: Database) -> None:
    later = NOW + timedelta(seconds=30)  # e.g. held back by a 429 retry_after
    a1, a2, b1, c1, c2, a3 = (
        i
        for i, _ in await _outbox(
            db, [(1, None), (1, None), (2, None), (3, later), (3, None), (1, NOW)]
        )
    )

    assert await _claim(db, "w1", limit=1) == [a1]
    # a2/a3 wait behind a1 (sending); c1 is not due and c2 may not overtake it.
    assert await _claim(db, "w2") == [b1]
    assert await _claim(db, "w2") == []

    await _finish(db, a1)
    assert await _claim(db, "w1") == [a2]
    await _finish(db, a2, state="failed")  # a finished failure does not block the chat
    assert await _claim(db, "w1", now=later) == [c1, a3]
    await _finish(db, c1, state="ambiguous")
    assert await _claim(db, "w2", now=later) == [c2]

    async with db.transaction() as s:
        rows = (await s.execute(select(Delivery.id, Delivery.claimed_by))).all()
        states = {delivery_id: worker for delivery_id, worker in rows}
    assert states == {a1: "w1", a2: "w1", b1: "w2", c1: "w1", c2: "w2", a3: "w1"}


async def test_concurrent_claimers_share_the_work_without_overlap(db: Database) -> None:
    # 4 chats x 6 copies, written in runs of two per chat; 3 workers claim and "send" at once.
    plan = [(chat, None) for _ in range(3) for chat in (1, 1, 2, 2, 3, 3, 4, 4)]
    rows = await _outbox(db, plan)
    chat_of = dict(rows)
    claims: dict[int, str] = {}
    order: dict[int, list[int]] = defaultdict(list)
    in_flight: set[int] = set()
    violations: list[str] = []

    async def worker(name: str) -> None:
        for _ in range(500):  # bounded: the whole job needs ~20 rounds
            if len(claims) == len(rows):
                return
            got = await _claim(db, name, limit=3)
            for delivery_id in got:
                if delivery_id in claims:
                    violations.append(f"{delivery_id} claimed by {claims[delivery_id]} and {name}")
                claims[delivery_id] = name
                chat = chat_of[delivery_id]
                if chat in in_flight:
                    violations.append(f"two copies in flight for chat {chat}")
                in_flight.add(chat)
                order[chat].append(delivery_id)
            await asyncio.sleep(0)
            for delivery_id in got:
                # Leave in-flight before the commit that lets the chat's next row go.
                in_flight.discard(chat_of[delivery_id])
                await _finish(db, delivery_id)

    await asyncio.gather(worker("w1"), worker("w2"), worker("w3"))

    assert violations == []
    assert sorted(claims) == sorted(i for i, _ in rows)
    for chat, ids in order.items():
        assert ids == sorted(i for i, c in rows if c == chat)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated PostgreSQL database only (behaviour that SQLite serialises away)."""
    return fresh_database_url(request, migrated=True)


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database (a copy of the session's template)."""
    database = Database(postgres_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_postgres_claimer_skips_rows_another_is_claiming(pg_db: Database) -> None:
    a1, a2, b1, c1 = (
        i for i, _ in await _outbox(pg_db, [(1, None), (1, None), (2, None), (3, None)])
    )
    first_claimed = asyncio.Event()
    release = asyncio.Event()

    async def slow_claimer() -> list[int]:
        async with pg_db.transaction() as s:
            got = await claim_deliveries(s, worker_id="slow", limit=1, now=NOW)
            first_claimed.set()
            await release.wait()  # keeps a1 locked and uncommitted
            return [d.id for d in got]

    slow = asyncio.create_task(slow_claimer())
    await first_claimed.wait()
    # SKIP LOCKED: the second claimer neither waits for a1 nor takes a2 behind it. A wait
    # here would be a deadlock (the first claimer only commits after), hence the bound.
    fast = await asyncio.wait_for(_claim(pg_db, "fast"), timeout=60)
    release.set()
    assert await slow == [a1]
    assert fast == [b1, c1]
    assert await _claim(pg_db, "fast") == []  # a2 waits until a1 is sent
    await _finish(pg_db, a1)
    assert await _claim(pg_db, "fast") == [a2]


async def test_claiming_then_auditing_claims_as_claim_does_and_extends_the_chain(
    db: Database,
) -> None:
    # Recording outcomes claims and then audits (PostgreSQL: the claim and the audit head's
    # lock are one statement): the same rows as a plain claim, and the events appended after
    # the head, also when nothing is due.
    a1, _a2, b1 = (i for i, _ in await _outbox(db, [(1, None), (1, None), (2, None)]))
    chain = AuditChain()

    async def claim_then_audit(n: int) -> list[int]:
        async with db.transaction() as s:
            events = [PendingEvent(component="outbox", event_type=f"e{n}", actor="w")]
            claimed = await s.run_sync(
                lambda sync: claim_then_audit_sync(
                    sync, chain, events, worker_id="w", limit=10, now=NOW
                )
            )
            return [d.id for d in claimed if d.state == "sending" and d.claimed_by == "w"]

    assert await claim_then_audit(1) == [a1, b1]
    assert await claim_then_audit(2) == []  # a2 waits behind a1
    async with db.transaction() as s:
        events = list(await s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        head = await s.get_one(AuditHead, 1)
    assert [(e.seq, e.event_type) for e in events] == [(1, "e1"), (2, "e2")]
    assert events[1].prev_hash == events[0].hash
    assert (head.seq, head.hash) == (2, events[1].hash)


async def test_recording_outcomes_claims_each_chats_next_row_in_the_same_transaction(
    db: Database,
) -> None:
    # The outbox's hot path (PostgreSQL: the claim and the head's lock in one statement, the
    # outcomes and the events in another): the rows being finished free their chats for the
    # claim in the same transaction, and the outcomes, the message map and the chain all land.
    # On PostgreSQL (several processes may deliver) a row another worker took since still
    # holds its chat until it has ended; on SQLite one process delivers (its run lock) and
    # the outcomes are written before the claim.
    plan = [(1, None), (1, None), (2, None), (2, None)]
    a1, a2, b1, b2 = (i for i, _ in await _outbox(db, plan))
    assert await _claim(db, "w") == [a1, b1]
    async with db.transaction() as s:
        # b1's lease ran out and another worker took it meanwhile.
        await s.execute(update(Delivery).where(Delivery.id == b1).values(claimed_by="other"))
        rows = {
            d.id: d for d in await s.scalars(select(Delivery).where(Delivery.id.in_([a1, b1])))
        }
    chain = AuditChain()
    posted, changes = _outcomes(rows, [a1, b1])
    events = [
        PendingEvent(component="outbox", event_type="delivery.sent", actor="w", payload={"d": i})
        for i in (a1, b1)
    ]
    async with db.transaction() as s:
        claimed = await s.run_sync(
            lambda sync: finish_claim_audit_sync(
                sync, chain, posted, changes, events, worker_id="w", limit=10, now=NOW
            )
        )
    pg = db.dialect == "postgresql"
    next_rows = [a2] if pg else [a2, b2]
    assert [(d.id, d.state, d.claimed_by) for d in claimed.deliveries] == [
        (i, "sending", "w") for i in next_rows
    ]
    if pg:  # the claimed rows' target chats come with them (rendering reads none)
        (row,) = claimed.deliveries
        assert list(claimed.chats) == [row.target_chat_id]
        target = claimed.chats[row.target_chat_id]
        assert (target.telegram_chat_id, target.title) == (SUPERGROUP_ID - 1, "chat 1")
    async with db.transaction() as s:
        states = dict(
            (
                await s.execute(
                    select(Delivery.id, Delivery.state).where(Delivery.id.in_([a1, a2, b1, b2]))
                )
            )
            .tuples()
            .all()
        )
        finished = await s.get_one(Delivery, a1)
        copies = list(await s.scalars(select(Copy).order_by(Copy.delivery_id)))
        logged = list(await s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert states == {a1: "sent", a2: "sending", b1: "sent", b2: "pending" if pg else "sending"}
    assert finished.telegram_message_ids == [500 + a1]
    assert finished.claimed_by is None
    assert finished.sent_at == NOW
    assert [(c.delivery_id, c.telegram_message_id, c.created_at) for c in copies] == [
        (a1, 500 + a1, NOW),
        (b1, 500 + b1, NOW),
    ]
    assert [e.payload for e in logged] == [f'{{"d":{a1}}}', f'{{"d":{b1}}}']
    assert (await verify_database(db, chain)).ok
    if pg:  # b1 has ended now: its chat's next row goes with the next claim
        assert await _claim(db, "w") == [b2]


_EVENTS_IN_ORDER = select(AuditEvent).order_by(AuditEvent.seq)


def _outcomes(rows: dict[int, Delivery], ids: list[int]) -> tuple[list[Any], list[Any]]:
    posted = [
        {
            "delivery_id": i,
            "message_id": rows[i].message_id,
            "target_chat_id": rows[i].target_chat_id,
            "telegram_chat_id": -1000 - i,
            "telegram_message_id": 500 + i,
            "part": 0,
            "created_at": NOW,
        }
        for i in ids
    ]
    changes = [
        {
            "b_id": i,
            "state": "sent",
            "last_error": None,
            "claimed_by": None,
            "claimed_at": None,
            "sent_at": NOW,
            "telegram_message_ids": [500 + i],
        }
        for i in ids
    ]
    return posted, changes


@pytest.mark.postgres
async def test_outcomes_in_one_statement_after_the_known_head_or_nothing(pg_db: Database) -> None:
    # PostgreSQL, autocommit: after the head this process last left, the outcomes, the next
    # claims and the events are one statement. When another writer moved the head meanwhile,
    # it writes nothing at all (the caller then runs the transaction), and the head is read
    # afresh next time.
    a1, a2, b1, b2 = (
        i for i, _ in await _outbox(pg_db, [(1, None), (1, None), (2, None), (2, None)])
    )
    assert await _claim(pg_db, "w") == [a1, b1]
    async with pg_db.transaction() as s:
        rows = {
            d.id: d for d in await s.scalars(select(Delivery).where(Delivery.id.in_([a1, b1])))
        }
    chain = AuditChain()

    def event(n: int) -> list[PendingEvent]:
        return [PendingEvent(component="outbox", event_type=f"e{n}", actor="w")]

    def alone(ids: list[int], n: int) -> Any:
        posted, changes = _outcomes(rows, ids)
        return pg_db.write_alone(
            lambda sync: finish_claim_audit_at_head_sync(
                sync, chain, posted, changes, event(n), worker_id="w", limit=10, now=NOW
            )
        )

    assert await alone([a1], 1) is None  # no head known yet: nothing tried
    async with pg_db.transaction() as s:  # an append of this process: the head is known now
        await s.run_sync(lambda sync: chain.append_many_sync(sync, event(2)))
    claimed = await alone([a1], 3)
    assert [d.id for d in claimed.deliveries] == [a2]
    assert set(claimed.chats) == {d.target_chat_id for d in claimed.deliveries}
    # Another process appends (this chain's guess is now stale).
    async with pg_db.transaction() as s:
        await s.run_sync(lambda sync: AuditChain().append_many_sync(sync, event(4)))
    assert await alone([b1], 5) is None
    async with pg_db.transaction() as s:
        b1_row = await s.get_one(Delivery, b1)
        logged = [
            e.event_type for e in await s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]
        mapped = [c.delivery_id for c in await s.scalars(select(Copy).order_by(Copy.id))]
    assert (b1_row.state, b1_row.claimed_by) == ("sending", "w")  # untouched
    assert logged == ["e2", "e3", "e4"]
    assert mapped == [a1]
    # The transaction path records b1 and learns the head again; then one statement works.
    posted, changes = _outcomes(rows, [b1])
    async with pg_db.transaction() as s:
        claimed = await s.run_sync(
            lambda sync: finish_claim_audit_sync(
                sync, chain, posted, changes, event(6), worker_id="w", limit=10, now=NOW
            )
        )
    assert [d.id for d in claimed.deliveries] == [b2]
    assert await alone([], 7) == (([], {}))
    assert (await verify_database(pg_db, chain)).ok
    async with pg_db.transaction() as s:
        logged = [
            e.event_type for e in await s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]
    assert logged == ["e2", "e3", "e4", "e6", "e7"]


@pytest.mark.postgres
@pytest.mark.parametrize("workers", [1, 2])
async def test_workers_and_another_writer_keep_one_chain_and_each_copy_once(
    postgres_url: str, workers: int
) -> None:
    # Delivering processes (each its own pool and its own guess of the head) record outcomes
    # in one statement when their guess holds and in a transaction when it does not, while
    # another process appends events of its own: every row ends sent exactly once, each
    # chat's rows in order, and the chain verifies.
    dbs = [Database(postgres_url) for _ in range(3)]
    try:
        plan = [(chat, None) for _ in range(8) for chat in (1, 2, 3, 4)]
        ids = [i for i, _ in await _outbox(dbs[0], plan)]
        async with dbs[0].transaction() as s:
            rows = {d.id: d for d in await s.scalars(select(Delivery))}
        stop = asyncio.Event()

        async def worker(db: Database, name: str) -> list[int]:
            chain, done = AuditChain(), []
            async with db.transaction() as s:
                claimed = await claim_deliveries(s, worker_id=name, limit=2, now=NOW)
            while claimed:
                mine = [d.id for d in claimed]
                got = await _record_outcomes(db, chain, name, *_outcomes(rows, mine))
                done.extend(mine)
                claimed = got.deliveries
                await asyncio.sleep(0)
            return done

        async def other_writer() -> int:
            chain, n = AuditChain(), 0
            while not stop.is_set():
                async with dbs[2].transaction() as s:
                    event = [PendingEvent(component="relay", event_type="other", actor="x")]
                    await s.run_sync(lambda sync, event=event: chain.append_many_sync(sync, event))
                n += 1
                await asyncio.sleep(0.002)
            return n

        writer = asyncio.create_task(other_writer())
        done = await asyncio.gather(*(worker(dbs[n], f"w{n}") for n in range(workers)))
        stop.set()
        others = await writer
        finished = [i for mine in done for i in mine]
        assert sorted(finished) == sorted(ids)  # each row finished once, by one worker
        async with dbs[0].transaction() as s:
            states = {d.id: (d.state, d.claimed_by) for d in await s.scalars(select(Delivery))}
            copies = [(c.target_chat_id, c.delivery_id) for c in await s.scalars(select(Copy))]
            logged = [e.event_type for e in await s.scalars(_EVENTS_IN_ORDER)]
        assert set(states.values()) == {("sent", None)}
        assert sorted(d for _, d in copies) == sorted(ids)
        for chat in {rows[i].target_chat_id for i in ids}:  # the message map in queue order
            in_chat = [d for c, d in sorted(copies, key=lambda x: x[1]) if c == chat]
            assert in_chat == sorted(i for i in ids if rows[i].target_chat_id == chat)
        assert logged.count("delivery.sent") == len(ids)
        assert logged.count("other") == others
        assert (await verify_database(dbs[0], AuditChain())).ok
    finally:
        for db in dbs:
            await db.dispose()


async def _record_outcomes(
    db: Database,
    chain: AuditChain,
    name: str,
    posted: list[Any],
    changes: list[Any],
) -> Any:
    """As the outbox does: one statement after the known head, else a transaction."""
    events = [
        PendingEvent(component="outbox", event_type="delivery.sent", actor=name) for _ in changes
    ]
    args = (chain, posted, changes, events)
    got = await db.write_alone(
        lambda sync: finish_claim_audit_at_head_sync(sync, *args, worker_id=name, limit=2, now=NOW)
    )
    if got is None:
        async with db.transaction() as s:
            got = await s.run_sync(
                lambda sync: finish_claim_audit_sync(sync, *args, worker_id=name, limit=2, now=NOW)
            )
    return got
