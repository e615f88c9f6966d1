"""Auditing a refusal after the rollback: one place for every service.

A command refused half-way (a wrong code, a wrong role, a bad argument) raises a `DarajaError`
inside its unit of work, which rolls back everything the command did. The refusal itself must
still be on the record, so it is audited afterwards, in a transaction of its own, and the error
then goes on to the caller (who tells the person). `audit_refusals` is that one code path,
given how the service records the refusal; `audited_refusals` is its common case, the standard
`<command>.refused` event (`audit_refusal`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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


# How a service records one refusal: the error and its reason (awaited after the rollback).
# It may raise an error of its own instead (chained to the refusal), e.g. a lockout.
RecordRefusal = Callable[[DarajaError, str], Awaitable[None]]


def refusal_reason(exc: DarajaError) -> str | None:
    """Why a command was refused, as audited: the error's `refused` reason, else its key."""
    reason = exc.params.get("refused") or exc.key
    return str(reason) if reason else None


@asynccontextmanager
async def audit_refusals(
    record: RecordRefusal, *, marked_only: bool = False
) -> AsyncIterator[None]:
    """Wrap a unit of work: a `DarajaError` it raises (after its rollback) is recorded by
    `record` in a fresh transaction, then re-raised. `marked_only`: only errors that name a
    `refused` reason are refusals (the rest, e.g. a bad argument, pass through unrecorded)."""
    try:
        yield
    except DarajaError as exc:
        reason = exc.params.get("refused") if marked_only else refusal_reason(exc)
        if reason:
            await record(exc, str(reason))
        raise


def audited_refusals(
    uow: Callable[..., UnitOfWork],
    *,
    component: str,
    command: str,
    actor: str,
    chat_id: int | None,
    with_operation: bool = True,
) -> AbstractAsyncContextManager[None]:
    """`audit_refusals` recording the standard event: a `DarajaError` raised inside is audited
    as `<command>.refused` (its `refused` parameter, else its catalog key, as the reason)."""

    async def record(exc: DarajaError, reason: str) -> None:
        await audit_refusal(
            uow,
            component=component,
            event_type=f"{command}.refused",
            actor=actor,
            reason=reason,
            chat_id=chat_id,
            with_operation=with_operation,
        )

    return audit_refusals(record)
