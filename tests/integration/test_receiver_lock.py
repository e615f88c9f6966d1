"""PostgreSQL's receiver lock: one process receives updates; the lock survives the loss of its
connection (a server restart, a killed backend) and is taken again, or reported lost."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage.db import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    from tests.support.postgres import fresh_database_url

    return fresh_database_url(request, migrated=True)


async def _kill_lock_holder(url: str) -> int:
    """Terminate the backend holding this database's advisory lock; how many were."""
    admin = Database(url)
    try:
        async with admin.transaction() as s:
            killed = await s.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        return int(killed or 0)
    finally:
        await admin.dispose()


async def test_one_receiver_at_a_time(url: str) -> None:
    first, second = Database(url), Database(url)
    try:
        assert await first.hold_receiver_lock()
        assert not await second.hold_receiver_lock()
        assert await first.check_receiver_lock() == "held"
        await first.dispose()
        assert await second.hold_receiver_lock()
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_lost_connection_takes_the_lock_again(url: str) -> None:
    first, second = Database(url), Database(url)
    try:
        assert await first.hold_receiver_lock()
        assert await _kill_lock_holder(url) == 1
        assert await first.check_receiver_lock() == "retaken"
        assert not await second.hold_receiver_lock()  # it really holds it again
        assert await first.check_receiver_lock() == "held"
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_lock_taken_meanwhile_by_another_is_reported_lost(url: str) -> None:
    first, second = Database(url), Database(url)
    try:
        assert await first.hold_receiver_lock()
        assert await _kill_lock_holder(url) == 1
        assert await second.hold_receiver_lock()
        assert await first.check_receiver_lock() == "lost"
        await second.dispose()
        assert await first.check_receiver_lock() == "retaken"  # free again: taken back
    finally:
        await first.dispose()
        await second.dispose()


async def test_sqlite_and_processes_without_the_lock_always_hold(tmp_path: object) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/d.db")
    try:
        assert await db.hold_receiver_lock()
        assert await db.check_receiver_lock() == "held"
    finally:
        await db.dispose()
