"""The hot-path storage: writes on the event loop's thread, group commit when they queue,
never a frozen loop while another process holds SQLite's lock, inline repositories."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from storage.audit import AuditChain, PendingEvent
from storage.audit_verify import verify_database
from storage.db import Database
from storage.inline import InlineSuspended, run_inline
from storage.models import AuditEvent, Operation
from storage.uow import Storage


def _add_operation(name: str) -> object:
    def work(s: Session) -> int:
        op = Operation(name=name, created_at=datetime.now(UTC))
        s.add(op)
        s.flush()
        return op.id

    return work


async def _names(db: Database) -> list[str]:
    async with db.reader() as s:
        return list((await s.scalars(select(Operation.name).order_by(Operation.id))).all())


async def test_writes_at_once_each_get_their_own_result_or_error(db: Database) -> None:
    """Many writes at once: every caller gets its own id, the one that breaks a constraint
    gets the error, and nobody else loses their write."""
    names = [f"Op {i}" for i in range(20)]
    names.insert(7, "Op 3")  # the duplicate name violates the unique constraint
    results = await asyncio.gather(
        *(db.write(_add_operation(n)) for n in names),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], IntegrityError)
    ids = [r for r in results if isinstance(r, int)]
    assert len(set(ids)) == 20
    assert sorted(await _names(db)) == sorted(f"Op {i}" for i in range(20))


async def test_writes_queued_behind_a_transaction_share_one_commit(db: Database) -> None:
    """Writes that arrive while a transaction holds the turn wait for it, then commit together
    (each in its own savepoint): the one breaking a constraint fails alone."""
    names = [f"Queued {i}" for i in range(10)]
    names.insert(4, "Queued 2")
    async with db.transaction() as s:
        s.add(Operation(name="Holder", created_at=datetime.now(UTC)))
        await s.flush()
        tasks = [
            asyncio.create_task(db.write(_add_operation(n)))  # type: ignore[arg-type]
            for n in names
        ]
        for _ in range(5):
            await asyncio.sleep(0)
        if db.dialect == "sqlite":
            # Nothing may commit ahead of the open transaction.
            assert not any(t.done() for t in tasks)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], IntegrityError)
    assert sorted(await _names(db)) == sorted(["Holder", *(f"Queued {i}" for i in range(10))])


async def test_a_lock_held_by_another_process_does_not_freeze_the_loop(db: Database) -> None:
    """Another connection (as another process would) holds SQLite's write lock: the write
    waits for it off the event loop, the loop keeps running, and the write lands after."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite's single write lock")
    path = db.engine.url.database
    assert path
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    write = asyncio.create_task(db.write(_add_operation("Blocked")))  # type: ignore[arg-type]
    read = await db.read(lambda s: s.execute(select(func.count(Operation.id))).scalar_one())
    await asyncio.sleep(0.3)
    assert not write.done()
    assert ticks > 5  # the loop ran on (reads too) while the write waited for the lock
    assert read == 0
    other.execute("COMMIT")
    other.close()
    op_id = await asyncio.wait_for(write, 30)
    ticking.cancel()
    assert isinstance(op_id, int)
    assert await _names(db) == ["Blocked"]
    # The next write takes the fast path again and sees the same database.
    await db.write(_add_operation("After"))  # type: ignore[arg-type]
    assert await _names(db) == ["Blocked", "After"]


async def test_a_read_answered_busy_is_read_again_in_a_thread(db: Database) -> None:
    """SQLite rarely answers a WAL reader busy; when it does, the read is not lost and the
    loop does not wait: it runs again in a reader thread."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite's busy answer")
    await db.write(_add_operation("Delmas"))  # type: ignore[arg-type]
    threads: list[str] = []

    def count(s: Session) -> int:
        threads.append(threading.current_thread().name)
        if len(threads) == 1:
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
            raise OperationalError("SELECT", {}, busy)
        return int(s.execute(select(func.count(Operation.id))).scalar_one())

    assert await db.read(count) == 1
    assert threads[0] == threading.current_thread().name  # first try: the loop's own thread
    assert threads[1].startswith("daraja-reader")


async def test_audit_batches_from_concurrent_writes_keep_one_valid_chain(db: Database) -> None:
    chain = AuditChain()

    def append(n: int) -> object:
        def work(s: Session) -> None:
            chain.append_many_sync(
                s,
                [
                    PendingEvent(
                        component="test", event_type="t.one", actor="x", payload={"n": n}
                    ),
                    PendingEvent(
                        component="test", event_type="t.two", actor="x", payload={"n": n}
                    ),
                ],
            )
            if n == 5:
                raise RuntimeError("this write fails after appending")

        return work

    results = await asyncio.gather(
        *(db.write(append(n)) for n in range(12)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert sum(isinstance(r, RuntimeError) for r in results) == 1
    async with db.reader() as s:
        count = (await s.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
    # 11 writes x 2 events; the failed write's events were rolled back with it.
    assert count == 22
    result = await verify_database(db, chain)
    assert result.ok, result
    assert result.count == 22


async def test_a_unit_of_work_on_the_fast_path_runs_repository_code_in_one_go(
    db: Database,
) -> None:
    op_id = await db.write(_add_operation("Kenscoff"))  # type: ignore[arg-type]
    found = await Storage(db).read(lambda uow: uow.operations.by_id(int(op_id)))
    assert found is not None
    assert found.name == "Kenscoff"


async def test_reads_through_the_reader_cannot_write(db: Database) -> None:
    """Both backends refuse a write through a read (PostgreSQL's reads run without a
    transaction, each statement read-only)."""
    with pytest.raises(Exception, match=r"readonly|read-only|attempt to write"):
        await db.read(lambda s: s.execute(text("DELETE FROM operations")))
    async with db.reader() as s:
        with pytest.raises(Exception, match=r"readonly|read-only|attempt to write"):
            await s.execute(text("DELETE FROM operations"))


def test_inline_code_that_really_suspends_is_refused() -> None:
    async def sleeps() -> None:
        await asyncio.sleep(0)

    with pytest.raises(InlineSuspended):
        run_inline(sleeps())
