"""The async database: engine, SQLite pragmas, transactions, migrations.

SQLite runs in WAL mode with foreign keys on, a busy timeout and `synchronous=FULL` (the audit
log promises durability). Each transaction starts with `BEGIN IMMEDIATE` so two writers never
deadlock upgrading a read lock. PostgreSQL uses asyncpg with a checked pool (a connection
idle for a while is pinged before use), READ COMMITTED (what the audit head's `SELECT ... FOR
UPDATE` and the outbox's `SKIP LOCKED` claiming are written for) and the session time zone
pinned to UTC; nothing SQLite-specific (pragmas, `BEGIN IMMEDIATE`) is sent to it. Migrations
on PostgreSQL hold an advisory lock so two processes starting together do not race.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, event, pool, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import duplicate_of, raise_mapped
from storage.private_files import prepare_sqlite, private_dir

log = logging.getLogger(__name__)

T = TypeVar("T")
# Threads (each with its own SQLite connection) serving `Database.read`.
READER_THREADS = 2
# Most writes one group commit carries.
WRITE_BATCH = 64
# How long a connection that may wait waits for SQLite's write lock.
BUSY_TIMEOUT_MS = 30000
# A PostgreSQL connection idle in the pool longer than this is pinged before use.
PING_AFTER_IDLE_S = 1.0
_CHECKED_IN = "daraja_checked_in"

# Key of the PostgreSQL advisory lock held while migrating, so two bot processes starting at
# once against one database do not both try to create the tables (the second waits, then
# finds nothing to do). Any constant works; this one spells "daraja" in ASCII.
_MIGRATION_LOCK_KEY = 0x646172616A61
# The one process that receives updates holds this advisory lock (PostgreSQL).
RECEIVER_LOCK_KEY = 0x646172616A62
RECEIVER_PING_S = 10.0
RECEIVER_KEEPALIVE = (
    ("tcp_keepalives_idle", 20),
    ("tcp_keepalives_interval", 10),
    ("tcp_keepalives_count", 3),
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaTooNew(Exception):
    """The database carries a migration this code does not know: a newer Daraja wrote it.

    Upgrading would fail half-way and downgrading loses data, so every command stops here."""

    def __init__(self, revision: str, head: str) -> None:
        super().__init__(
            f"this database was written by a newer Daraja (revision {revision}; this code "
            f"knows up to {head}); upgrade the code or restore a backup"
        )
        self.revision = revision
        self.head = head


class DatabaseUnavailable(Exception):
    """The database cannot be created or opened; the text says why (never the URL)."""


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

    `read_only`: SQLite transactions begin DEFERRED and the connection refuses writes, so
    reads never queue behind the single writer (WAL readers see the last commit); PostgreSQL
    statements run read-only in autocommit (see below)."""
    path = _sqlite_path(url)
    if path is not None:
        _prepare_sqlite_path(path)
    # hide_parameters: a database error's text (logged with its traceback) and SQLAlchemy's
    # echo would otherwise quote the statement's parameters, i.e. message texts.
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, echo=echo, hide_parameters=True, connect_args={"timeout": 30}
        )
        _sqlite_settings(engine.sync_engine, read_only=read_only, busy_ms=BUSY_TIMEOUT_MS)
        return engine
    server_settings = {"application_name": "daraja", "timezone": "UTC"}
    if read_only:
        # Reads run without BEGIN and COMMIT: under READ COMMITTED every statement takes its
        # own snapshot anyway, so a read transaction is no more consistent than its statements
        # on their own, and the two round trips were a third of a hot-path read's. Writing is
        # still refused: each statement is a read-only transaction of its own.
        server_settings["default_transaction_read_only"] = "on"
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
        pool_recycle=1800,
        # Last in, first out: under load the same few connections serve every transaction, so
        # their prepared-statement caches stay warm; the rest idle (and get pinged, below).
        pool_use_lifo=True,
        # Explicit, whatever the server's default_transaction_isolation says: the audit chain
        # and outbox claiming rely on READ COMMITTED's re-check of locked rows.
        isolation_level="AUTOCOMMIT" if read_only else "READ COMMITTED",
        connect_args={"server_settings": server_settings},
    )
    _ping_when_idle(engine.sync_engine, PING_AFTER_IDLE_S)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection before use if it sat idle in the pool longer than `idle_s`:
    a server restart or an idle connection dropped by a firewall is found before use (a dead
    one is replaced, as with `pool_pre_ping`). SQLAlchemy's `pool_pre_ping` pings at every
    checkout, on a READ COMMITTED connection as BEGIN, a ping and ROLLBACK: three round trips
    before every transaction, a fifth of all of the relay's round trips under a burst."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < idle_s:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool drops this connection and checks out (or opens) another.
            raise DisconnectionError("pooled connection found dead") from exc


def _prepare_sqlite_path(path: Path) -> None:
    """Create the database's directory, or say in one line why it cannot be used (before
    aiosqlite tries, whose failure to connect leaves a thread reporting to a closed loop)."""
    if path.is_dir():
        raise DatabaseUnavailable(f"the database path {path} is a directory, not a file")
    try:
        private_dir(path.parent)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create the database's directory {path.parent}: {exc.strerror or exc}"
        ) from None
    if not path.parent.is_dir():
        raise DatabaseUnavailable(f"{path.parent} is not a directory")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        # SQLite needs to create its -wal and -shm files beside the database.
        raise DatabaseUnavailable(
            f"cannot write in the database's directory {path.parent} (permission denied)"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseUnavailable(f"the database file {path} is not readable and writable")
    try:
        prepare_sqlite(path)
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot prepare the database file {path}: {exc}") from None


def create_sync_engine(url: Any, *, read_only: bool = False, wait: bool = True) -> Engine:
    """A synchronous SQLite engine with the same pragmas as the async one, one connection per
    thread: the writer thread, the reader threads, or the event loop's own thread.

    `wait=False` (the event loop's thread): no busy timeout, so a lock held by another process
    fails at once instead of freezing the loop; the caller then hands the work to a thread
    that may wait."""
    busy_ms = BUSY_TIMEOUT_MS if wait else 0
    engine = sa_create_engine(
        url,
        poolclass=pool.SingletonThreadPool,
        pool_size=READER_THREADS + 1,
        hide_parameters=True,
        connect_args={"timeout": busy_ms / 1000, "check_same_thread": False},
    )
    _sqlite_settings(engine, read_only=read_only, busy_ms=busy_ms)
    return engine


def _sqlite_settings(engine: Engine, *, read_only: bool, busy_ms: int) -> None:
    """Daraja's pragmas on every new SQLite connection, and how its transactions begin."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA synchronous=FULL")
        if read_only:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class _LoopState:
    """Per event loop: the lock write transactions take turns on, and the queue of writes
    waiting for the next group commit."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.queue: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]] = []
        self.committer: asyncio.Task[None] | None = None


class Database:
    """The engine and transactions of one deployment.

    Four ways in, each for one kind of caller: `transaction()` and `reader()` (async sessions,
    what `storage.uow.UnitOfWork` opens), and `write(fn)` and `read(fn)` (one short
    synchronous transaction on the fast path with group commit, what `storage.uow.Storage`
    runs the hot paths' units of work on). Services use the unit of work, never these."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine: AsyncEngine | None = None
        self._read_sessions: async_sessionmaker[AsyncSession] | None = None
        self._autocommit_sessions: async_sessionmaker[AsyncSession] | None = None
        self._loop_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._writer: ThreadPoolExecutor | None = None
        self._sync_engine: Engine | None = None
        self._sync_sessions: sessionmaker[Session] | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._sync_read_engine: Engine | None = None
        self._sync_read_sessions: sessionmaker[Session] | None = None
        # The event loop thread's own connections (SQLite): no busy wait, see `write`.
        self._here_engines: list[Engine] = []
        self._here_sessions: sessionmaker[Session] | None = None
        self._here_read_sessions: sessionmaker[Session] | None = None
        self._run_lock: Any = None
        self._receiver: Any = None
        self._receiver_wanted = False  # this process took the receiver lock once

    def hold_run_lock(self) -> None:
        """Mark the SQLite database as used by a running bot until `dispose` (`daraja restore`
        refuses to overwrite it meanwhile). PostgreSQL needs none: restore asks the server."""
        path = _sqlite_path(self.url)
        if path is not None and self._run_lock is None:
            from storage.backup import RunLock

            self._run_lock = RunLock.hold(path)

    async def hold_receiver_lock(self) -> bool:
        """On PostgreSQL, take the database's receiver lock (a session advisory lock on a
        connection of its own, held until `dispose` or the process ends): False when another
        process holds it. Only one process may receive updates (two would fight over
        getUpdates, or take webhook updates in no common order); delivery workers do not take
        it. SQLite has its lock file instead (`storage.backup.receiver_lock`): always True."""
        if self.dialect == "sqlite" or self._receiver is not None:
            return True
        conn = await self.engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # The server probes this connection: if the receiving host dies without closing
            # it, the lock is free again within about a minute, not after TCP's two hours.
            for setting, value in RECEIVER_KEEPALIVE:
                await conn.execute(text(f"SET {setting} = {value}"))
            got = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": RECEIVER_LOCK_KEY}
            )
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._receiver = conn
        self._receiver_wanted = True
        return True

    async def check_receiver_lock(self) -> str:
        """Whether this process still holds the receiver lock (`hold_receiver_lock`): `held`;
        `retaken` when its connection was gone (PostgreSQL restarted, the connection was
        killed) and the lock was taken again; `lost` when another process took it meanwhile;
        `unreachable` when the server cannot be reached now (asked again later). SQLite, or a
        process that holds no receiver lock: always `held`."""
        if not self._receiver_wanted:
            return "held"
        if self._receiver is not None:
            try:
                # Bounded: a server host that vanished would leave the ping hanging for as
                # long as TCP retransmits (many minutes).
                await asyncio.wait_for(self._receiver.scalar(text("SELECT 1")), RECEIVER_PING_S)
                return "held"
            except Exception:  # noqa: BLE001 - the connection is gone, whatever the driver says
                receiver, self._receiver = self._receiver, None
                # Invalidated, not returned to the pool: a connection that failed without
                # being closed may still hold the lock, and must never be handed out again.
                with contextlib.suppress(Exception):
                    await receiver.invalidate()
                with contextlib.suppress(Exception):
                    await receiver.close()
        try:
            got = await asyncio.wait_for(self.hold_receiver_lock(), RECEIVER_PING_S)
        except Exception:  # noqa: BLE001 - the server is down: the caller asks again later
            return "unreachable"
        return "retaken" if got else "lost"

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
        timeout.

        A unique constraint named in `storage.errors` surfaces as `Duplicate`; every other
        integrity error stays what it is."""
        try:
            if self.dialect != "sqlite":
                async with self.sessions() as session, session.begin():
                    yield session
                return
            async with self._write_lock(), self.sessions() as session, session.begin():
                yield session
        except IntegrityError as exc:
            raise_mapped(exc)

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run `fn(session)` as one write transaction and return its result.

        For the hot paths (recording a message, claiming and finishing deliveries): `fn` is
        plain synchronous SQLAlchemy. On PostgreSQL it runs through `AsyncSession.run_sync` on
        the async pool.

        On SQLite it runs on the event loop's own thread, on a synchronous connection, and is
        committed before `write` returns: a few milliseconds of work at most, one fsync
        (about a millisecond here). Handing it to a thread cost far more under a burst: each
        statement released and re-took the interpreter lock while the loop thread was busy, and
        every re-take could wait a full switch interval (5 ms). The loop's connection never waits
        for a lock: when another process (a CLI command, a second bot) holds SQLite's write
        lock, `BEGIN IMMEDIATE` fails at once and the write goes to this process's writer
        thread, which waits for the lock with the normal busy timeout while the loop goes on.

        Group commit: writes that queue while a write is waiting (an async `transaction` holds
        the turn, or the writer thread is waiting for another process) run together in one
        transaction, each in its own savepoint, committed with one fsync; each caller gets its
        own result or exception (a failing write rolls back only its savepoint), and only once
        the commit is durable."""
        if self.dialect != "sqlite":
            async with self.transaction() as s:
                return await s.run_sync(fn)
        loop = asyncio.get_running_loop()
        state = self._loop_state(loop)
        if (
            not state.queue
            and not state.lock.locked()
            and (state.committer is None or state.committer.done())
        ):
            outcomes = self._write_here([fn])
            if outcomes is not None:
                ok, value = outcomes[0]
                if ok:
                    return cast(T, value)
                raise value
        future: asyncio.Future[Any] = loop.create_future()
        state.queue.append((fn, future))
        if state.committer is None or state.committer.done():
            state.committer = loop.create_task(self._commit_writes(state))
        return cast(T, await future)

    async def _commit_writes(self, state: _LoopState) -> None:
        loop = asyncio.get_running_loop()
        while state.queue:
            batch = state.queue[:WRITE_BATCH]
            del state.queue[:WRITE_BATCH]
            fns = [fn for fn, _ in batch]
            try:
                async with state.lock:
                    outcomes = self._write_here(fns)
                    if outcomes is None:  # another process holds the lock: wait in a thread
                        outcomes = await loop.run_in_executor(
                            self._writer_pool(), self._write_batch_sync, fns
                        )
            except Exception as exc:  # noqa: BLE001 - the commit failed: no write is durable
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # the caller was cancelled
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _write_here(self, fns: list[Callable[[Session], Any]]) -> list[tuple[bool, Any]] | None:
        """The batch on the event loop's thread; None (nothing done) if another process holds
        SQLite's write lock."""
        if self._here_sessions is None:
            self._here_sessions = self._here(read_only=False)
        try:
            return self._run_batch(self._here_sessions, fns, here=True)
        except _Busy:
            return None

    def _write_batch_sync(self, fns: list[Callable[[Session], Any]]) -> list[tuple[bool, Any]]:
        assert self._sync_sessions is not None
        return self._run_batch(self._sync_sessions, fns, here=False)

    @staticmethod
    def _run_batch(
        sessions: sessionmaker[Session], fns: list[Callable[[Session], Any]], *, here: bool
    ) -> list[tuple[bool, Any]]:
        if len(fns) == 1:
            try:
                with sessions() as session, session.begin():
                    if here:
                        _begin_or_busy(session)
                    return [(True, fns[0](session))]
            except _Busy:
                raise
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                return [(False, _mapped(exc))]
        outcomes: list[tuple[bool, Any]] = []
        with sessions() as session, session.begin():
            if here:
                _begin_or_busy(session)
            for fn in fns:
                try:
                    with session.begin_nested():
                        outcomes.append((True, fn(session)))
                except Exception as exc:  # noqa: BLE001 - handed to its caller
                    outcomes.append((False, _mapped(exc)))
        return outcomes

    async def write_alone(self, fn: Callable[[Session], T]) -> T:
        """Run `fn(session)`, whose writes are one statement, without a transaction around it:
        on PostgreSQL in autocommit (the statement is its own transaction; no BEGIN and
        COMMIT round trips), on SQLite as `write`."""
        if self.dialect == "sqlite":
            return await self.write(fn)
        if self._autocommit_sessions is None:
            engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            self._autocommit_sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            async with self._autocommit_sessions() as session:
                return await session.run_sync(fn)
        except IntegrityError as exc:
            raise_mapped(exc)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run `fn(session)` on a read-only snapshot and return its result: on PostgreSQL
        through `run_sync`; on SQLite on the event loop's thread on a synchronous connection
        (the hot paths' reads are a few indexed lookups; WAL readers do not wait for the
        writer), in a reader thread in the rare case SQLite answers busy."""
        if self.dialect != "sqlite":
            async with self.reader() as s:
                return await s.run_sync(fn)
        if self._here_read_sessions is None:
            self._here_read_sessions = self._here(read_only=True)
        try:
            with self._here_read_sessions() as session, session.begin():
                try:
                    return fn(session)
                except OperationalError as exc:
                    if _is_busy(exc):
                        raise _Busy from exc
                    raise
        except _Busy:  # rare for a WAL reader: read again in a thread that may wait
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._reader_pool(), self._read_sync, fn)

    def _reader_pool(self) -> ThreadPoolExecutor:
        if self._readers is None:
            self._readers = ThreadPoolExecutor(
                max_workers=READER_THREADS, thread_name_prefix="daraja-reader"
            )
            self._sync_read_engine = create_sync_engine(self._sync_url(), read_only=True)
            self._sync_read_sessions = sessionmaker(self._sync_read_engine, expire_on_commit=False)
        return self._readers

    def _read_sync(self, fn: Callable[[Session], T]) -> T:
        assert self._sync_read_sessions is not None
        with self._sync_read_sessions() as session, session.begin():
            return fn(session)

    def _writer_pool(self) -> ThreadPoolExecutor:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="daraja-writer")
            self._sync_engine = create_sync_engine(self._sync_url())
            self._sync_sessions = sessionmaker(self._sync_engine, expire_on_commit=False)
        return self._writer

    def _here(self, *, read_only: bool) -> sessionmaker[Session]:
        """Sessions on the event loop thread's own connection, which never waits for a lock."""
        engine = create_sync_engine(self._sync_url(), read_only=read_only, wait=False)
        self._here_engines.append(engine)
        return sessionmaker(engine, expire_on_commit=False)

    def _sync_url(self) -> Any:
        return make_url(self.url).set(drivername="sqlite")

    def _write_lock(self) -> asyncio.Lock:
        return self._loop_state(asyncio.get_running_loop()).lock

    def _loop_state(self, loop: asyncio.AbstractEventLoop) -> _LoopState:
        state = self._loop_states.get(loop)
        if state is None:
            state = self._loop_states[loop] = _LoopState()
        return state

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only snapshot that never waits for SQLite's writer; on PostgreSQL a read-only
        connection without a transaction (READ COMMITTED: each statement sees the last
        commits). Writing through it fails."""
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
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None
        self._receiver_wanted = False
        if self._receiver is not None:
            receiver, self._receiver = self._receiver, None
            with contextlib.suppress(Exception):  # closing the session releases the lock
                await receiver.close()
        await self.engine.dispose()
        if self._read_engine is not None:
            await self._read_engine.dispose()
        if self._readers is not None:
            readers, read_engine = self._readers, self._sync_read_engine
            self._readers, self._sync_read_engine, self._sync_read_sessions = None, None, None
            readers.shutdown(wait=True)
            if read_engine is not None:
                read_engine.dispose()
        engines, self._here_engines = self._here_engines, []
        self._here_sessions = self._here_read_sessions = None
        for here in engines:
            here.dispose()
        if self._writer is not None:
            writer, engine = self._writer, self._sync_engine
            self._writer, self._sync_engine, self._sync_sessions = None, None, None
            if engine is not None:
                # Close the connection in the thread that owns it.
                await asyncio.get_running_loop().run_in_executor(writer, engine.dispose)
            writer.shutdown(wait=False)


def _mapped(exc: Exception) -> Exception:
    """A write's failure as its caller sees it: `Duplicate` for a named unique constraint."""
    if isinstance(exc, IntegrityError):
        duplicate = duplicate_of(exc)
        if duplicate is not None:
            duplicate.__cause__ = exc
            return duplicate
    return exc


class _Busy(Exception):
    """SQLite answered busy on a connection that does not wait (nothing was done)."""


def _is_busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _begin_or_busy(session: Session) -> None:
    """Start the session's transaction (`BEGIN IMMEDIATE`) now; `_Busy` if the lock is held."""
    try:
        session.connection()
    except OperationalError as exc:
        if _is_busy(exc):
            raise _Busy from exc
        raise


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
        from alembic.runtime.migration import MigrationContext

        check_known(MigrationContext.configure(sync_conn).get_current_revision())
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


def check_known(revision: str | None) -> None:
    """Raise `SchemaTooNew` if a database's revision is not one this code ships."""
    if revision is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = ScriptDirectory.from_config(_alembic_config())
    try:
        known = script.get_revision(revision) is not None
    except CommandError:  # "Can't locate revision identified by ..."
        known = False
    if not known:
        raise SchemaTooNew(revision, head_revision())


def head_revision() -> str:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def run_sync(coro: Any) -> Any:
    """Run a coroutine from synchronous CLI code."""
    return asyncio.run(coro)
