"""One audit export, as `daraja audit export` and the web console both run it: resolve the
scope (operation, unit, time range), then stream the matching events through
`storage.audit_export.write_export` in CSV or JSONL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from bot.domain.audit_dates import parse_range
from bot.services.audit_access import Scope, resolve_scope
from storage.audit import AuditRecord
from storage.audit_export import Format, write_export
from storage.audit_read import EventFilter, iter_records
from storage.db import Database
from storage.uow import Storage


@dataclass(frozen=True)
class ExportPlan:
    """What one export reads: the scope (for the unit filter) and the events' filter."""

    scope: Scope
    filter: EventFilter


async def plan_export(
    db: Database,
    *,
    operation: str | None,
    unit: str | None,
    since: str | None,
    until: str | None,
    now: datetime,
) -> ExportPlan:
    """Resolve names and times; UserInputError/NotFound say which one is wrong."""
    span = parse_range(since, until, now=now)
    async with Storage(db)() as uow:
        scope = await resolve_scope(uow, operation=operation, unit=unit)
    return ExportPlan(
        scope, EventFilter(operation_id=scope.operation_id, since=span.since, until=span.until)
    )


async def run_export(
    db: Database,
    plan: ExportPlan,
    out: TextIO,
    fmt: Format,
    *,
    progress: Callable[[int], None] | None = None,
    after_each: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Write the planned events to `out`; returns how many. `after_each` is awaited between
    events, so a caller can flush `out` as it fills (memory stays flat)."""
    records = iter_records(db, plan.filter)
    if after_each is not None:
        records = _paced(records, after_each)
    return await write_export(records, out, fmt, keep=plan.scope.matcher(), progress=progress)


async def _paced(
    records: AsyncIterator[AuditRecord], after_each: Callable[[], Awaitable[None]]
) -> AsyncIterator[AuditRecord]:
    async for record in records:
        yield record
        await after_each()
