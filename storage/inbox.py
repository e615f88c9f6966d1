"""The durable inbox's rows: raw updates committed before Telegram is told they arrived."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxUpdate

_TABLE = cast(Table, InboxUpdate.__table__)
_SET_ERROR = (
    update(_TABLE).where(_TABLE.c.update_id == bindparam("uid")).values(error=bindparam("error"))
)


class InboxRepo:
    """Stored updates, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_new(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the rows whose `update_id` is not stored yet (a replay is ignored, also one
        inserted meanwhile by another process); the rows that were new, in order."""
        ids = [r["update_id"] for r in rows]
        existing = set(
            (
                await self.session.execute(
                    select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids))
                )
            ).scalars()
        )
        fresh, seen = [], set(existing)
        for r in rows:
            if r["update_id"] not in seen:
                seen.add(r["update_id"])
                fresh.append(r)
        if fresh:
            postgres = self.session.get_bind().dialect.name == "postgresql"
            insert = pg_insert if postgres else sqlite_insert
            stmt = (
                insert(InboxUpdate)
                .values(fresh)
                .on_conflict_do_nothing(index_elements=["update_id"])
            )
            await self.session.execute(stmt)
        return fresh

    async def pending(self) -> list[tuple[int, str]]:
        """Updates not yet processed (id, raw payload), oldest first."""
        result = await self.session.execute(
            select(InboxUpdate.update_id, InboxUpdate.payload)
            .where(InboxUpdate.state == "new")
            .order_by(InboxUpdate.update_id)
        )
        return [(int(a), str(b)) for a, b in result.all()]

    async def mark(self, batch: Sequence[tuple[int, str, str | None]], now: datetime) -> None:
        """Record how updates ended (`done` or `failed`, with the error if any): one statement
        per state and one executemany for the errors, so a storm of bad updates stays cheap."""
        for state in ("done", "failed"):
            ids = [u for u, st, _ in batch if st == state]
            if ids:
                await self.session.execute(
                    update(InboxUpdate)
                    .where(InboxUpdate.update_id.in_(ids))
                    .values(state=state, processed_at=now)
                )
        errors = [{"uid": u, "error": e[:255]} for u, _, e in batch if e]
        if errors:
            await self.session.execute(_SET_ERROR, errors)
