"""The async database: engine, SQLite pragmas, transactions, migrations.

SQLite runs in WAL mode with foreign keys on, a busy timeout and `synchronous=FULL` (the audit
log promises durability). Each transaction starts with `BEGIN IMMEDIATE` so two writers never
deadlock upgrading a read lock. PostgreSQL uses asyncpg with a checked (pre-ping) pool,
READ COMMITTED (what the audit head's `SELECT ... FOR UPDATE` and the outbox's `SKIP LOCKED`
claiming are written for) and the session time zone pinned to UTC; nothing SQLite-specific
(pragmas, `BEGIN IMMEDIATE`) is sent to it. Migrations on PostgreSQL hold an advisory lock so
two processes starting together do not race.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock held while migrating, so two bot processes starting at
# once against one database do not both try to create the tables (the second waits, then
# finds nothing to do). Any constant works; this one spells "daraja" in ASCII.
_MIGRATION_LOCK_KEY = 0x646172616A61

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    db = parsed.database
    if not db or db == ":memory:":
        return None
    return Path(db)


def create_engine(url: str, *, echo: bool = False, read_only: bool = False) -> AsyncEngine:
    """Create an async engine with Daraja's connection settings for the URL's backend.

    `read_only` (SQLite): transactions begin DEFERRED and the connection refuses writes, so
    reads never queue behind the single writer (WAL readers see the last commit)."""
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy (not the driver) decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=FULL")
            if read_only:
                cur.execute("PRAGMA query_only=ON")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        echo=echo,
        # A server restart or an idle connection dropped by a firewall is found before use.
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_recycle=1800,
        # Explicit, whatever the server's default_transaction_isolation says: the audit chain
        # and outbox claiming rely on READ COMMITTED's re-check of locked rows.
        isolation_level="READ COMMITTED",
        connect_args={"server_settings": {"application_name": "daraja", "timezone": "UTC"}},
    )


class Database:
    """The engine and session factory of one deployment."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine: AsyncEngine | None = None
        self._read_sessions: async_sessionmaker[AsyncSession] | None = None
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any error.

        On SQLite, write transactions of this process take turns on an asyncio lock (first
        come, first served) before `BEGIN IMMEDIATE`: SQLite's own busy handler makes a waiting
        writer sleep and poll (up to 100 ms a time), which under a burst turned a few
        milliseconds of work into seconds of waiting. Other processes still meet the busy
        timeout."""
        if self.dialect != "sqlite":
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock(), self.sessions() as session, session.begin():
            yield session

    def _write_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            lock = self._write_locks[loop] = asyncio.Lock()
        return lock

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only snapshot that never waits for SQLite's writer (same as a transaction on
        PostgreSQL). Writing through it fails."""
        if self.dialect != "sqlite":
            async with self.transaction() as session:
                yield session
            return
        if self._read_sessions is None:
            self._read_engine = create_engine(self.url, read_only=True)
            self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)
        async with self._read_sessions() as session, session.begin():
            yield session

    async def upgrade(self) -> None:
        """Apply all Alembic migrations (idempotent)."""
        await upgrade(self.engine)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._read_engine is not None:
            await self._read_engine.dispose()


def _alembic_config(connection: Any | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Run Alembic's upgrade on the engine's database, each revision in its own transaction."""
    from alembic import command

    def _run(sync_conn: Any) -> None:
        command.upgrade(_alembic_config(sync_conn), revision)

    lock_path = _sqlite_path(str(engine.url))
    if lock_path is not None:
        # Two processes starting together must not interleave migration steps: SQLite has no
        # session lock that outlives Alembic's per-migration transactions, so use a file lock.
        lock_file = lock_path.with_name(lock_path.name + ".migrate-lock")
        fd = await asyncio.to_thread(_lock_file, lock_file)
        try:
            await _upgrade_locked(engine, revision, _run)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    await _upgrade_locked(engine, revision, _run)


def _lock_file(path: Path) -> int:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


async def _upgrade_locked(engine: AsyncEngine, revision: str, run: Any) -> None:
    async with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # Session-level lock: it outlives the per-migration transactions below.
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            await conn.commit()
        try:
            await conn.run_sync(run)
            await conn.commit()
        finally:
            if postgres:
                await conn.rollback()
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY}
                )
                await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's current Alembic revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    def _get(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_get)


def head_revision() -> str:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def run_sync(coro: Any) -> Any:
    """Run a coroutine from synchronous CLI code."""
    return asyncio.run(coro)
