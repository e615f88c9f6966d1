"""What the console shows, read from the database: the message log (filtered, keyset-paged,
newest first), one message with every copy, FLASH acknowledgement timelines, and the last
known positions for the map.

The log reuses the auditor's view objects (`bot.services.audit_access`): an entry here is the
same `LogEntry` that `/log` sends in Telegram, scoped to the viewer's operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.services.audit_access import AuditAccess, LogEntry
from storage.audit import HeadState
from storage.db import Database
from storage.message_log import LogRows
from storage.status_repo import Flash
from storage.uow import Storage, UnitOfWork

PAGE_SIZE = 50
SIDES = ("PNH", "MSS")
VERDICTS = ("flagged", "clean")
STATES = ("pending", "sending", "sent", "ambiguous", "failed")
LANGUAGES = ("ht", "fr", "en", "sw")
MAX_SEARCH = 200


@dataclass(frozen=True)
class LogFilter:
    """The log page's filters, as parsed from the query string (all optional)."""

    unit: str | None = None
    side: str | None = None
    language: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    verdict: str | None = None
    state: str | None = None
    text: str | None = None
    before: int | None = None  # keyset cursor: messages with a smaller id

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters (without the cursor), for links and the audit."""
        out: dict[str, str] = {}
        for name in ("unit", "side", "language", "verdict", "state", "text"):
            value = getattr(self, name)
            if value:
                out[name] = str(value)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.strftime("%Y-%m-%dT%H:%M")
        return out


@dataclass(frozen=True)
class LogPage:
    """One page of the log, newest first; `next_before` is None on the last page."""

    entries: tuple[LogEntry, ...]
    next_before: int | None
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class AckStep:
    """One expected unit of a FLASH, acknowledged or still waited for."""

    unit: str
    side: str
    by: str | None
    at: datetime | None
    after_s: float | None


@dataclass(frozen=True)
class FlashTimeline:
    """A FLASH order and its per-unit acknowledgement timeline (first acknowledged first)."""

    flash_id: int
    text: str
    sender: str
    sent_at: datetime
    steps: tuple[AckStep, ...] = field(default=())

    @property
    def acked(self) -> int:
        """How many expected units acknowledged."""
        return sum(1 for s in self.steps if s.at is not None)


class ConsoleQueries:
    """Read-only queries, each scoped to one operation (None: an unenrolled admin's view)."""

    def __init__(self, db: Database, access: AuditAccess) -> None:
        self.db = db
        self.storage = Storage(db)
        self.access = access

    async def operation_name(self, operation_id: int | None) -> str | None:
        """The name of the viewer's operation (None: none, or an unenrolled admin)."""
        if operation_id is None:
            return None
        async with self.storage() as uow:
            op = await uow.operations.by_id(operation_id)
        return op.name if op else None

    async def audit_head(self) -> HeadState:
        """The audit chain's current head, shown beside the chain check."""
        async with self.storage() as uow:
            return await uow.audit_head()

    async def units(self, operation_id: int | None) -> tuple[str, ...]:
        """Unit codes of the operation, for the filter's choices."""
        async with self.storage() as uow:
            return await uow.log.unit_codes(operation_id)

    async def log(
        self, operation_id: int | None, filt: LogFilter, *, limit: int = PAGE_SIZE
    ) -> LogPage:
        """A page of messages matching the filters, newest first (keyset on the id)."""
        async with self.storage() as uow:
            rows = await uow.log.rows(
                LogRows(
                    operation_id=operation_id,
                    before=filt.before,
                    unit_code=filt.unit,
                    side=filt.side,
                    language=filt.language,
                    since=filt.since,
                    until=filt.until,
                    verdict=filt.verdict,
                    state=filt.state,
                    text=filt.text,
                    newest_first=True,
                    limit=limit + 1,
                )
            )
            more = len(rows) > limit
            rows = rows[:limit]
            entries = await self.access.entries(uow, rows)
            units = await uow.log.unit_codes(operation_id)
        return LogPage(entries, entries[-1].message_id if more and entries else None, units)

    async def message(self, operation_id: int | None, message_id: int) -> LogEntry | None:
        """One message with every copy, or None if it is not the viewer's operation's."""
        async with self.storage() as uow:
            rows = await uow.log.rows(LogRows(operation_id=operation_id, message_id=message_id))
            entries = await self.access.entries(uow, rows)
        return entries[0] if entries else None

    async def flash_of(self, operation_id: int | None, message_id: int) -> FlashTimeline | None:
        """The acknowledgement timeline when a message is a FLASH order."""
        async with self.storage() as uow:
            flash = await uow.log.flash_of(message_id, operation_id)
            return await _timeline(uow, flash) if flash is not None else None

    async def flashes(self, operation_id: int | None, *, limit: int = 20) -> list[FlashTimeline]:
        """The operation's latest FLASH orders, newest first, each with its timeline."""
        async with self.storage() as uow:
            return [
                await _timeline(uow, f) for f in await uow.log.latest_flashes(operation_id, limit)
            ]


async def _timeline(uow: UnitOfWork, flash: Flash) -> FlashTimeline:
    message, units, acks = await uow.log.flash_parts(flash)
    steps = []
    for unit_id in flash.expected_units or []:
        unit = units.get(int(unit_id))
        if unit is None:
            continue
        ack = acks.get(unit.id)
        steps.append(
            AckStep(
                unit=unit.code,
                side=unit.side,
                by=ack.person_name if ack else None,
                at=ack.acked_at if ack else None,
                after_s=(ack.acked_at - flash.created_at).total_seconds() if ack else None,
            )
        )
    steps.sort(key=lambda st: (st.at is None, st.at or flash.created_at, st.unit))
    return FlashTimeline(
        flash_id=flash.id,
        text=message.text if message else "",
        sender=flash.sender_name,
        sent_at=flash.created_at,
        steps=tuple(steps),
    )
