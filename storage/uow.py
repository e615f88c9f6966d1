"""The unit of work: one transaction and the repositories that work in it.

Services say what they need by intent (`uow.flashes.open_due(now)`, `uow.notices.queue(...)`)
and never see SQL or a session; `async with` commits on a clean exit and rolls back on any
error, and `committed` tells which happened. Tests hand services `tests.support.uow`'s
`FakeUnitOfWork` instead: the same attributes over in-memory repositories that record what
happened, so service rules run in milliseconds without a database (cosmicpython's pattern).

The relay's hot path does not go through here: it writes with `Database.write` (one
synchronous transaction on the event loop's thread on SQLite, see storage/db.py).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import AuditChain
from storage.db import Database
from storage.messages import MessageRepo
from storage.notices import DraftRepo, NoticeRepo
from storage.repositories import ChatRepo, OperationRepo, PersonRepo
from storage.status_repo import FlashRepo, StatusRepo


class UnitOfWork:
    """One database transaction with the repositories and the audit chain over it."""

    operations: OperationRepo
    chats: ChatRepo
    people: PersonRepo
    messages: MessageRepo
    status: StatusRepo
    flashes: FlashRepo
    notices: NoticeRepo
    drafts: DraftRepo

    def __init__(self, db: Database, chain: AuditChain, *, read_only: bool = False) -> None:
        self.db = db
        self.chain = chain
        self.read_only = read_only
        self.committed = False
        self._transaction: AbstractAsyncContextManager[AsyncSession] | None = None
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        self._transaction = self.db.reader() if self.read_only else self.db.transaction()
        session = self._session = await self._transaction.__aenter__()
        self.operations = OperationRepo(session)
        self.chats = ChatRepo(session)
        self.people = PersonRepo(session)
        self.messages = MessageRepo(session)
        self.status = StatusRepo(session)
        self.flashes = FlashRepo(session)
        self.notices = NoticeRepo(session)
        self.drafts = DraftRepo(session)
        return self

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
        """The transaction's session, for storage code that takes one (recording copies)."""
        assert self._session is not None, "use the unit of work inside `async with`"
        return self._session

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
