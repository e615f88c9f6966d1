"""The unit of work: one transaction and the repositories that work in it.

Services say what they need by intent (`uow.flashes.open_due(now)`, `uow.notices.queue(...)`)
and never see SQL or a session; `async with` commits on a clean exit and rolls back on any
error, and `committed` tells which happened. Tests hand services `tests.support.uow`'s
`FakeUnitOfWork` instead: the same attributes over in-memory repositories that record what
happened, so service rules run in milliseconds without a database (cosmicpython's pattern).

The hot paths (the relay, the inbox, the outbox) take a unit of work from `Storage.write` and
`Storage.read` instead: the same repositories, run inline on `Database.write`'s short
synchronous transaction (on SQLite on the event loop's own thread, with group commit; see
storage/db.py and storage/inline.py). Code given to them awaits only the repositories.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from storage.access import AccessRepo
from storage.attempts import AttemptRepo, RefusalRepo
from storage.audit import AuditChain, HeadState, PendingEvent, read_head
from storage.console import ConsoleRepo
from storage.db import Database
from storage.inbox import InboxRepo
from storage.inline import as_async, run_inline
from storage.message_log import MessageLogRepo
from storage.messages import MessageRepo
from storage.notices import DraftRepo, NoticeRepo
from storage.outbox import OutboxRepo
from storage.outbox_claim import (
    Claimed,
    finish_claim_audit_at_head_sync,
    finish_claim_audit_sync,
)
from storage.queues import QueueRepo
from storage.relay_rows import RelayRepo
from storage.repositories import ChatRepo, CodeRepo, OperationRepo, PersonRepo
from storage.status_repo import FlashRepo, StatusRepo


class UnitOfWork:
    """One database transaction with the repositories and the audit chain over it."""

    operations: OperationRepo
    chats: ChatRepo
    people: PersonRepo
    codes: CodeRepo
    attempts: AttemptRepo
    refusals: RefusalRepo
    access: AccessRepo
    log: MessageLogRepo
    console: ConsoleRepo
    messages: MessageRepo
    status: StatusRepo
    flashes: FlashRepo
    notices: NoticeRepo
    drafts: DraftRepo
    relay: RelayRepo
    inbox: InboxRepo
    outbox: OutboxRepo
    queues: QueueRepo

    def __init__(self, db: Database, chain: AuditChain, *, read_only: bool = False) -> None:
        self.db = db
        self.chain = chain
        self.read_only = read_only
        self.committed = False
        self._transaction: AbstractAsyncContextManager[AsyncSession] | None = None
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        self._transaction = self.db.reader() if self.read_only else self.db.transaction()
        self._bind(await self._transaction.__aenter__())
        return self

    @classmethod
    def over(cls, db: Database, chain: AuditChain, session: AsyncSession) -> UnitOfWork:
        """A unit of work on a transaction someone else opened and ends (`Storage.write`)."""
        uow = cls(db, chain)
        uow._bind(session)
        return uow

    def _bind(self, session: AsyncSession) -> None:
        self._session = session
        self.operations = OperationRepo(session)
        self.chats = ChatRepo(session)
        self.people = PersonRepo(session)
        self.codes = CodeRepo(session)
        self.attempts = AttemptRepo(session)
        self.refusals = RefusalRepo(session)
        self.access = AccessRepo(session)
        self.log = MessageLogRepo(session)
        self.console = ConsoleRepo(session)
        self.messages = MessageRepo(session)
        self.status = StatusRepo(session)
        self.flashes = FlashRepo(session)
        self.notices = NoticeRepo(session)
        self.drafts = DraftRepo(session)
        self.relay = RelayRepo(session, self.chain)
        self.inbox = InboxRepo(session)
        self.outbox = OutboxRepo(session)
        self.queues = QueueRepo(session)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._transaction is not None
        transaction, self._transaction = self._transaction, None
        suppressed = await transaction.__aexit__(exc_type, exc, tb)
        self.committed = exc_type is None and not self.read_only
        return suppressed

    @property
    def session(self) -> AsyncSession:
        """The transaction's session (what the audit chain appends on)."""
        assert self._session is not None, "use the unit of work inside `async with`"
        return self._session

    async def audit_head(self) -> HeadState:
        """The audit chain's current head (no lock: for showing and anchoring)."""
        return await read_head(self.session)

    async def audit_many(self, events: list[PendingEvent]) -> None:
        """Append events in order in this transaction (one read and one write of the head)."""
        await self.chain.append_many(self.session, events)

    async def finish_claim_audit(
        self,
        posted: Sequence[dict[str, Any]],
        changes: Sequence[dict[str, Any]],
        events: list[PendingEvent],
        *,
        worker_id: str,
        limit: int,
        now: datetime,
    ) -> Claimed:
        """Record finished outbox rows' outcomes, claim the next due rows, then append
        `events`, in this transaction (`storage.outbox_claim.finish_claim_audit_sync`; on
        PostgreSQL two statements)."""
        return cast(
            Claimed,
            await self.session.run_sync(
                lambda s: finish_claim_audit_sync(
                    s,
                    self.chain,
                    posted,
                    changes,
                    events,
                    worker_id=worker_id,
                    limit=limit,
                    now=now,
                )
            ),
        )

    async def finish_claim_audit_at_head(
        self,
        posted: Sequence[dict[str, Any]],
        changes: Sequence[dict[str, Any]],
        events: list[PendingEvent],
        *,
        worker_id: str,
        limit: int,
        now: datetime,
    ) -> Claimed | None:
        """`finish_claim_audit` as one statement after the head this process last left
        (PostgreSQL, `Storage.write_alone`); None, nothing written, when that head is unknown
        or has moved (`storage.outbox_claim.finish_claim_audit_at_head_sync`)."""
        return cast(
            Claimed | None,
            await self.session.run_sync(
                lambda s: finish_claim_audit_at_head_sync(
                    s,
                    self.chain,
                    posted,
                    changes,
                    events,
                    worker_id=worker_id,
                    limit=limit,
                    now=now,
                )
            ),
        )

    async def audit(
        self,
        *,
        component: str,
        event_type: str,
        actor: str,
        outcome: str = "ok",
        payload: dict[str, Any] | None = None,
        operation_id: int | None = None,
        ts: datetime | None = None,
    ) -> None:
        """Append one audit event in this transaction (kept or dropped with it)."""
        await self.chain.append(
            self.session,
            component=component,
            event_type=event_type,
            actor=actor,
            outcome=outcome,
            payload=payload,
            operation_id=operation_id,
            ts=ts,
        )


T = TypeVar("T")


class Storage:
    """What services get from storage: units of work (`storage()`), and the hot paths'
    short transactions (`write`, `read`) with the same repositories."""

    def __init__(self, db: Database, chain: AuditChain | None = None) -> None:
        self.db = db
        # Without a chain (the inbox, which audits nothing) an audit append fails loudly
        # rather than extending the log with the wrong key.
        self.chain = chain or _NoAudit()

    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work (`async with`)."""
        return UnitOfWork(self.db, self.chain, read_only=read_only)

    async def write(self, fn: Callable[[UnitOfWork], Coroutine[Any, Any, T]]) -> T:
        """`fn`'s work as one write transaction on the fast path (`Database.write`, group
        commit): committed before this returns, rolled back alone if `fn` raises."""
        return await self.db.write(lambda s: run_inline(fn(self.over(as_async(s)))))

    async def write_alone(self, fn: Callable[[UnitOfWork], Coroutine[Any, Any, T]]) -> T:
        """`fn`'s work, one write statement, without a transaction around it
        (`Database.write_alone`: PostgreSQL autocommit)."""
        return await self.db.write_alone(lambda s: run_inline(fn(self.over(as_async(s)))))

    async def read(self, fn: Callable[[UnitOfWork], Coroutine[Any, Any, T]]) -> T:
        """`fn`'s reads on one read-only snapshot on the fast path (`Database.read`)."""
        return await self.db.read(lambda s: run_inline(fn(self.over(as_async(s)))))

    def over(self, session: AsyncSession) -> UnitOfWork:
        """The unit of work on a session storage opened."""
        return UnitOfWork.over(self.db, self.chain, session)


class _NoAudit(AuditChain):
    """The chain of a `Storage` opened without one: refuses to append."""

    def append_many_sync(self, session: Any, events: Any, *, head: Any = None) -> Any:
        raise RuntimeError("this storage was opened without the audit chain")
