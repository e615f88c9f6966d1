"""Auditing a refusal after the rollback: one helper for every service.

A command refused half-way (a wrong code, a wrong role, a bad argument) raises a `DarajaError`
inside its unit of work, which rolls back everything the command did. The refusal itself must
still be on the record, so it is audited afterwards, in a transaction of its own, and the error
then goes on to the caller (who tells the person). Services differ only in how they record it,
which they pass in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.errors import DarajaError

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
