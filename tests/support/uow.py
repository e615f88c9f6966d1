"""A unit of work without a database, for the services' rules (cosmicpython's FakeUnitOfWork).

`FakeStore` holds what a database would (operations, units, chats, people, FLASHes and their
acknowledgements, copies, reports, alerted lapses) as plain ORM objects never added to a
session, and records what the services did: queued notices, audit events, commits. Each
`FakeUnitOfWork` works on the store like one transaction: a clean exit counts a commit; an
error puts the store's collections back as they were, and an integrity error is mapped to
`Duplicate` by the same function the real seam uses. Repositories implement only what the
services call; a rule needing more fails loudly (AttributeError), never silently.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy.exc import IntegrityError

from storage.errors import raise_mapped
from storage.models import (
    Chat,
    Copy,
    Message,
    Operation,
    Person,
    QueuedNotice,
    Unit,
    utcnow,
)
from storage.status_repo import Flash, FlashAck, Report, StaleAlert


def unique_violation(table: str, *columns: str) -> IntegrityError:
    """The error SQLite raises when a write hits the unique constraint on these columns."""
    cols = ", ".join(f"{table}.{c}" for c in columns)
    return IntegrityError("INSERT", {}, Exception(f"UNIQUE constraint failed: {cols}"))


def other_integrity_error() -> IntegrityError:
    """An integrity error that is not a replay (a NOT NULL column left empty)."""
    return IntegrityError("INSERT", {}, Exception("NOT NULL constraint failed: flashes.text"))


@dataclass
class AuditRecord:
    """One audit event a service appended."""

    event_type: str
    actor: str
    outcome: str
    payload: dict[str, Any]
    operation_id: int | None


@dataclass
class FakeStore:
    """The rows a test starts from, and what the services did to them."""

    operations: dict[int, Operation] = field(default_factory=dict)
    units: dict[int, Unit] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    people: dict[int, Person] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    flashes: dict[int, Flash] = field(default_factory=dict)
    acks: list[FlashAck] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    alerts: list[StaleAlert] = field(default_factory=list)
    notices: list[QueuedNotice] = field(default_factory=list)
    events: list[AuditRecord] = field(default_factory=list)
    commits: int = 0
    rollbacks: int = 0
    # Raised by the next write of that name (e.g. "flashes.add"), to play a refused write.
    failures: dict[str, Exception] = field(default_factory=dict)
    _ids: int = 0

    def next_id(self) -> int:
        """A fresh row id."""
        self._ids += 1
        return self._ids

    def fail(self, write: str) -> None:
        """Raise the scripted failure of this write, if any (once)."""
        exc = self.failures.pop(write, None)
        if exc is not None:
            raise exc

    # --- building a world ---------------------------------------------------------------

    def operation(self, name: str = "Kenscoff", **kw: Any) -> Operation:
        """Add an operation."""
        kw.setdefault("default_language", "en")
        kw.setdefault("timezone", "America/Port-au-Prince")
        kw.setdefault("report_interval_min", 60)
        kw.setdefault("glossary", {})
        op = Operation(id=self.next_id(), name=name, **kw)
        self.operations[op.id] = op
        return op

    def unit(self, op: Operation, code: str, side: str, language: str) -> Unit:
        """Add a unit."""
        unit = Unit(
            id=self.next_id(),
            operation_id=op.id,
            code=code,
            name=code,
            side=side,
            language=language,
        )
        self.units[unit.id] = unit
        return unit

    def chat(
        self,
        op: Operation,
        telegram_chat_id: int,
        languages: str,
        *,
        unit: Unit | None = None,
        is_command: bool = False,
        enrolled_at: datetime | None = None,
    ) -> Chat:
        """Enroll a chat."""
        chat = Chat(
            id=self.next_id(),
            telegram_chat_id=telegram_chat_id,
            operation_id=op.id,
            unit_id=unit.id if unit else None,
            languages=languages,
            is_command=is_command,
            active=True,
            enrolled_at=enrolled_at or utcnow(),
        )
        self.chats[chat.id] = chat
        return chat

    def person(
        self,
        op: Operation,
        telegram_user_id: int,
        role: str,
        language: str | None = None,
        unit: Unit | None = None,
    ) -> Person:
        """Enroll a person."""
        person = Person(
            id=self.next_id(),
            telegram_user_id=telegram_user_id,
            display_name=f"user {telegram_user_id}",
            role=role,
            language=language,
            operation_id=op.id,
            unit_id=unit.id if unit else None,
        )
        self.people[person.id] = person
        return person

    def copy(self, message: Message, chat: Chat, telegram_message_id: int) -> Copy:
        """Record that the bot posted a copy of `message` in `chat`."""
        row = Copy(
            id=self.next_id(),
            delivery_id=0,
            message_id=message.id,
            target_chat_id=chat.id,
            telegram_chat_id=chat.telegram_chat_id,
            telegram_message_id=telegram_message_id,
            part=0,
        )
        self.copies.append(row)
        return row

    def uow(self, *, read_only: bool = False) -> FakeUnitOfWork:
        """A unit of work on this store (what services call `self.uow()`)."""
        return FakeUnitOfWork(self, read_only=read_only)

    def factory(self) -> Callable[..., FakeUnitOfWork]:
        """The unit-of-work factory to hand a service."""
        return self.uow

    def events_of(self, event_type: str) -> list[AuditRecord]:
        """The audit events of one type, in order."""
        return [e for e in self.events if e.event_type == event_type]


_COLLECTIONS = (
    "operations",
    "units",
    "chats",
    "people",
    "messages",
    "copies",
    "flashes",
    "acks",
    "reports",
    "alerts",
    "notices",
    "events",
)


class FakeUnitOfWork:
    """`storage.uow.UnitOfWork` over a `FakeStore`."""

    def __init__(self, store: FakeStore, *, read_only: bool = False) -> None:
        self.store = store
        self.read_only = read_only
        self.committed = False
        self.operations = FakeOperationRepo(store)
        self.chats = FakeChatRepo(store)
        self.people = FakePersonRepo(store)
        self.messages = FakeMessageRepo(store)
        self.status = FakeStatusRepo(store)
        self.flashes = FakeFlashRepo(store)
        self.notices = FakeNoticeRepo(store)
        self._saved: dict[str, Any] = {}

    async def __aenter__(self) -> FakeUnitOfWork:
        self._saved = {name: copy.copy(getattr(self.store, name)) for name in _COLLECTIONS}
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.committed = not self.read_only
            self.store.commits += int(self.committed)
            return
        for name, saved in self._saved.items():
            setattr(self.store, name, saved)
        self.store.rollbacks += 1
        if isinstance(exc, IntegrityError):
            raise_mapped(exc)

    @property
    def session(self) -> Any:
        """No session: a rule that records copies needs the real database."""
        raise AttributeError("FakeUnitOfWork has no session (recording copies needs SQL)")

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
        """Record the event."""
        self.store.events.append(
            AuditRecord(event_type, actor, outcome, dict(payload or {}), operation_id)
        )


class _Repo:
    def __init__(self, store: FakeStore) -> None:
        self.store = store


class FakeOperationRepo(_Repo):
    async def by_id(self, operation_id: int) -> Operation | None:
        return self.store.operations.get(operation_id)

    async def all(self) -> Sequence[Operation]:
        return sorted(self.store.operations.values(), key=lambda o: o.id)

    async def unit_by_id(self, unit_id: int) -> Unit | None:
        return self.store.units.get(unit_id)


class FakeChatRepo(_Repo):
    async def by_telegram_id(self, telegram_chat_id: int) -> Chat | None:
        return next(
            (c for c in self.store.chats.values() if c.telegram_chat_id == telegram_chat_id),
            None,
        )

    async def linked(self, operation_id: int) -> Sequence[Chat]:
        return [
            c
            for c in sorted(self.store.chats.values(), key=lambda c: c.id)
            if c.operation_id == operation_id and c.active
        ]


class FakePersonRepo(_Repo):
    async def by_telegram_id(self, telegram_user_id: int) -> Person | None:
        return next(
            (p for p in self.store.people.values() if p.telegram_user_id == telegram_user_id),
            None,
        )

    async def in_operation(self, operation_id: int) -> Sequence[Person]:
        return [p for p in self.store.people.values() if p.operation_id == operation_id]


class FakeMessageRepo(_Repo):
    async def by_telegram(self, chat_id: int, telegram_message_id: int) -> Message | None:
        return next(
            (
                m
                for m in self.store.messages.values()
                if (m.chat_id, m.telegram_message_id) == (chat_id, telegram_message_id)
            ),
            None,
        )

    async def copy_at(self, telegram_chat_id: int, telegram_message_id: int) -> Copy | None:
        return next(
            (
                c
                for c in self.store.copies
                if (c.telegram_chat_id, c.telegram_message_id)
                == (telegram_chat_id, telegram_message_id)
            ),
            None,
        )

    async def copies_of(self, message_id: int, target_chat_id: int) -> Sequence[Copy]:
        return [
            c
            for c in self.store.copies
            if c.message_id == message_id and c.target_chat_id == target_chat_id
        ]

    async def message(self, message_id: int) -> Message | None:
        return self.store.messages.get(message_id)

    async def add_message(self, message: Message) -> Message:
        self.store.fail("messages.add")
        for other in self.store.messages.values():
            if (other.chat_id, other.telegram_message_id) == (
                message.chat_id,
                message.telegram_message_id,
            ):
                raise unique_violation("messages", "chat_id", "telegram_message_id")
        message.id = self.store.next_id()
        self.store.messages[message.id] = message
        return message

    async def add_filed_message(self, message: Message) -> Message:
        lowest = min(
            (
                m.telegram_message_id
                for m in self.store.messages.values()
                if m.chat_id == message.chat_id
            ),
            default=0,
        )
        message.telegram_message_id = min(lowest, 0) - 1
        return await self.add_message(message)


class FakeStatusRepo(_Repo):
    async def units(self, operation_id: int) -> Sequence[Unit]:
        return sorted(
            (u for u in self.store.units.values() if u.operation_id == operation_id),
            key=lambda u: u.code,
        )

    async def unit_chats(self, operation_id: int) -> dict[int, list[Chat]]:
        out: dict[int, list[Chat]] = {}
        for chat in sorted(self.store.chats.values(), key=lambda c: c.id):
            if chat.operation_id == operation_id and chat.active and chat.unit_id is not None:
                out.setdefault(chat.unit_id, []).append(chat)
        return out

    async def command_chats(self, operation_id: int) -> Sequence[Chat]:
        return [
            c
            for c in sorted(self.store.chats.values(), key=lambda c: c.id)
            if c.operation_id == operation_id and c.active and c.is_command
        ]

    async def latest_reports(self, operation_id: int) -> dict[int, Report]:
        latest: dict[int, Report] = {}
        for report in self.store.reports:
            if report.operation_id == operation_id:
                latest[report.unit_id] = report
        return latest

    async def units_with_latest(self, operation_id: int) -> list[tuple[Unit, Report | None]]:
        latest = await self.latest_reports(operation_id)
        return [(u, latest.get(u.id)) for u in await self.units(operation_id)]

    async def alerted_lapses(self, operation_id: int) -> set[tuple[int, str]]:
        return {(a.unit_id, a.lapse) for a in self.store.alerts if a.operation_id == operation_id}

    async def add_alert(self, alert: StaleAlert) -> None:
        self.store.alerts.append(alert)


class FakeFlashRepo(_Repo):
    async def add(self, flash: Flash) -> Flash:
        self.store.fail("flashes.add")
        for other in self.store.flashes.values():
            if (other.source_chat_id, other.source_message_id) == (
                flash.source_chat_id,
                flash.source_message_id,
            ):
                raise unique_violation("flashes", "source_chat_id", "source_message_id")
        flash.id = self.store.next_id()
        self.store.flashes[flash.id] = flash
        return flash

    async def get(self, flash_id: int) -> Flash | None:
        return self.store.flashes.get(flash_id)

    async def by_source(self, source_chat_id: int, source_message_id: int) -> Flash | None:
        return next(
            (
                f
                for f in self.store.flashes.values()
                if (f.source_chat_id, f.source_message_id) == (source_chat_id, source_message_id)
            ),
            None,
        )

    async def acks(self, flash_id: int) -> Sequence[FlashAck]:
        return [a for a in self.store.acks if a.flash_id == flash_id]

    async def ack_of(self, flash_id: int, unit_id: int) -> FlashAck | None:
        return next(
            (a for a in self.store.acks if (a.flash_id, a.unit_id) == (flash_id, unit_id)), None
        )

    async def add_ack(self, ack: FlashAck) -> FlashAck:
        self.store.acks.append(ack)
        return ack

    async def open_due(self, now: datetime) -> Sequence[Flash]:
        return [
            f
            for f in sorted(self.store.flashes.values(), key=lambda f: f.id)
            if f.escalated_at is None and f.remind_after <= now
        ]

    async def latest_by_sender(self, sender_user_id: int, limit: int) -> Sequence[Flash]:
        mine = [f for f in self.store.flashes.values() if f.sender_user_id == sender_user_id]
        return sorted(mine, key=lambda f: -f.id)[:limit]


class FakeNoticeRepo(_Repo):
    async def queue(
        self,
        *,
        telegram_chat_id: int,
        kind: str,
        text: str,
        now: datetime,
        ref: str = "",
        operation_id: int | None = None,
        action: str = "send",
        target_message_id: int | None = None,
    ) -> QueuedNotice:
        row = QueuedNotice(
            id=self.store.next_id(),
            operation_id=operation_id,
            telegram_chat_id=telegram_chat_id,
            kind=kind,
            ref=ref,
            action=action,
            text=text,
            target_message_id=target_message_id,
            state="pending",
            attempts=0,
            created_at=now,
        )
        self.store.notices.append(row)
        return row
