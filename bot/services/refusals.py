"""Auditing a refusal after the rollback: one helper for the rules that work through a unit of
work.

A refusal (a `DarajaError`: wrong chat, unknown unit, bad input) rolls back the transaction
that found it, so nothing is stored half-way; its audit event is then written in a unit of work
of its own, so everything attempted is still in the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from bot.errors import DarajaError
from storage.uow import UnitOfWork


def tg_actor(user_id: int | None) -> str:
    """The audit actor of a Telegram user (`unknown` when the update named none)."""
    return f"tg:{user_id}" if user_id else "unknown"


async def audit_refusal(
    uow: Callable[..., UnitOfWork],
    *,
    component: str,
    event_type: str,
    actor: str,
    reason: str,
    chat_id: int | None,
    detail: Mapping[str, Any] | None = None,
    with_operation: bool = True,
) -> None:
    """Write one `refused` event in its own unit of work. With `with_operation`, the event is
    filed under the operation of the Telegram chat it came from (when that chat is enrolled)."""
    async with uow() as work:
        operation_id = None
        if with_operation and chat_id is not None:
            chat = await work.chats.by_telegram_id(chat_id)
            operation_id = chat.operation_id if chat else None
        await work.audit(
            component=component,
            event_type=event_type,
            actor=actor,
            outcome="refused",
            operation_id=operation_id,
            payload={"reason": reason, "chat_id": chat_id, **(detail or {})},
        )


@asynccontextmanager
async def audited_refusals(
    uow: Callable[..., UnitOfWork],
    *,
    component: str,
    command: str,
    actor: str,
    chat_id: int | None,
    with_operation: bool = True,
) -> AsyncIterator[None]:
    """A `DarajaError` raised inside is audited as `<command>.refused` (its `refused` parameter,
    else its catalog key, as the reason) after the rollback, then re-raised."""
    try:
        yield
    except DarajaError as exc:
        await audit_refusal(
            uow,
            component=component,
            event_type=f"{command}.refused",
            actor=actor,
            reason=str(exc.params.get("refused") or exc.key),
            chat_id=chat_id,
            with_operation=with_operation,
        )
        raise
