"""The web console's one-time links and sessions (stored as hashes of their tokens)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConsoleLink, ConsoleSession


class ConsoleRepo:
    """Console links and sessions, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def forget_ended(self, cut: datetime) -> None:
        """Delete sessions that expired before `cut`, and links that did and opened none
        still kept."""
        await self.session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < cut))
        live = select(ConsoleSession.link_id)
        await self.session.execute(
            delete(ConsoleLink).where(ConsoleLink.expires_at < cut, ConsoleLink.id.not_in(live))
        )

    async def add_link(self, link: ConsoleLink) -> None:
        """Record a link just issued."""
        self.session.add(link)

    async def link(self, token_hash: str) -> ConsoleLink | None:
        """The link with this token hash, if any."""
        result = await self.session.execute(
            select(ConsoleLink).where(ConsoleLink.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def spend_link(self, link_id: int, at: datetime) -> bool:
        """Mark a link used; False if it already was. Single use even under two simultaneous
        logins: only one UPDATE finds it unused."""
        spent = await self.session.execute(
            update(ConsoleLink)
            .where(ConsoleLink.id == link_id, ConsoleLink.used_at.is_(None))
            .values(used_at=at)
        )
        return getattr(spent, "rowcount", 0) == 1

    async def add_session(self, row: ConsoleSession) -> ConsoleSession:
        """Record a session just opened (flushed: the id is set)."""
        self.session.add(row)
        await self.session.flush()
        return row

    async def session_of(self, token_hash: str) -> ConsoleSession | None:
        """The session with this token hash, if any (ended or not)."""
        result = await self.session.execute(
            select(ConsoleSession).where(ConsoleSession.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def end_session(self, token_hash: str, at: datetime) -> None:
        """End a session now."""
        await self.session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == token_hash)
            .values(ended_at=at)
        )
