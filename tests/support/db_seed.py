"""Small builders for storage tests: an operation with units, chats and messages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, Message, Operation, Unit

# A real-shaped supergroup id: below -2**31, so it needs a 64-bit column.
SUPERGROUP_ID = -1001234567890


@dataclass(frozen=True)
class Seeded:
    """Ids of the rows `seed_operation` wrote."""

    operation_id: int
    unit_ids: list[int]
    chat_ids: list[int]
    message_id: int


async def seed_operation(session: AsyncSession, *, chats: int = 2) -> Seeded:
    """An operation with one PNH and one MSS unit, `chats` enrolled chats and one message."""
    op = Operation(name="Kenscoff-1", default_language="fr")
    session.add(op)
    await session.flush()
    pnh = Unit(operation_id=op.id, code="PNH-1", name="PNH Kenscoff", side="PNH", language="ht")
    mss = Unit(operation_id=op.id, code="MSS-1", name="MSS Alpha", side="MSS", language="en")
    session.add_all([pnh, mss])
    await session.flush()
    rows = [
        Chat(
            telegram_chat_id=SUPERGROUP_ID - i,
            operation_id=op.id,
            unit_id=(pnh if i % 2 == 0 else mss).id,
            title=f"chat {i}",
            languages="ht" if i % 2 == 0 else "en",
        )
        for i in range(chats)
    ]
    session.add_all(rows)
    await session.flush()
    message = Message(
        operation_id=op.id,
        chat_id=rows[0].id,
        telegram_message_id=1,
        author_user_id=7_000_000_001,
        text="Ekip la rive nan Kenscoff a 14:30",
        source_language="ht",
    )
    session.add(message)
    await session.flush()
    return Seeded(
        operation_id=op.id,
        unit_ids=[pnh.id, mss.id],
        chat_ids=[c.id for c in rows],
        message_id=message.id,
    )
