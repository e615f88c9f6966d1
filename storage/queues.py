"""What waits in the durable queues: outbox and inbox sizes and their oldest rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, InboxUpdate


class QueueRepo:
    """The queues' depths, read in the caller's transaction (the metrics sampler's)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def depths(self) -> tuple[int, datetime | None, int, datetime | None]:
        """Waiting outbox rows and the oldest one's creation, then the same for the inbox."""
        out_n, out_oldest = (
            await self.session.execute(
                select(func.count(), func.min(Delivery.created_at)).where(
                    Delivery.state.in_(("pending", "sending"))
                )
            )
        ).one()
        in_n, in_oldest = (
            await self.session.execute(
                select(func.count(), func.min(InboxUpdate.received_at)).where(
                    InboxUpdate.state == "new"
                )
            )
        ).one()
        return int(out_n or 0), out_oldest, int(in_n or 0), in_oldest
