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
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from storage.audit import PendingEvent
from storage.errors import raise_mapped
from storage.models import (
    AttemptCounter,
    Chat,
    Copy,
    Delivery,
    EnrollmentCode,
    Message,
    Operation,
    Person,
    QueuedNotice,
    RefusalCount,
    Unit,
    utcnow,
)
from storage.relay_rows import PlanChat, PlanRows, Recorded, Target, TranslationRecord
from storage.status_repo import Flash, FlashAck, Report, StaleAlert

T = TypeVar("T")


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
    # The relay's rows: translations as stored (message, revision, language, record) and
    # outbox rows, in the order they were queued.
    translations: list[tuple[int, int, str, TranslationRecord]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    codes: dict[int, EnrollmentCode] = field(default_factory=dict)
    attempts: list[AttemptCounter] = field(default_factory=list)
    refusal_counts: list[RefusalCount] = field(default_factory=list)
    told_chats: set[int] = field(default_factory=set)
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

    def code(self, op: Operation, code_hash: str, kind: str, **kw: Any) -> EnrollmentCode:
        """Add an enrollment code (stored by its hash, as the real table keeps it)."""
        kw.setdefault("language", op.default_language)
        kw.setdefault("is_command", False)
        row = EnrollmentCode(
            id=self.next_id(), code_hash=code_hash, kind=kind, operation_id=op.id, **kw
        )
        self.codes[row.id] = row
        return row

    def uow(self, *, read_only: bool = False) -> FakeUnitOfWork:
        """A unit of work on this store (what services call `self.uow()`)."""
        return FakeUnitOfWork(self, read_only=read_only)

    # `storage.uow.Storage`'s interface, so services that take one can take this store.
    def __call__(self, *, read_only: bool = False) -> FakeUnitOfWork:
        """A unit of work (`async with`)."""
        return self.uow(read_only=read_only)

    async def write(self, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """The fast path's write: `fn` in one unit of work, committed or rolled back alone."""
        async with self.uow() as uow:
            return await fn(uow)

    async def read(self, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """The fast path's read."""
        async with self.uow(read_only=True) as uow:
            return await fn(uow)

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
    "translations",
    "deliveries",
    "codes",
    "attempts",
    "refusal_counts",
    "told_chats",
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
        self.relay = FakeRelayRepo(store)
        self.codes = FakeCodeRepo(store)
        self.attempts = FakeAttemptRepo(store)
        self.refusals = FakeRefusalRepo(store)
        self.access = FakeAccessRepo(store)
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

    async def audit_many(self, events: list[PendingEvent]) -> None:
        """Record the events, in order."""
        for e in events:
            await self.audit(
                component=e.component,
                event_type=e.event_type,
                actor=e.actor,
                outcome=e.outcome,
                payload=e.payload,
                operation_id=e.operation_id,
            )

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

    async def by_name(self, name: str) -> Operation | None:
        return next((o for o in self.store.operations.values() if o.name == name), None)

    async def unit(self, operation: Operation, code: str) -> Unit | None:
        return next(
            (
                u
                for u in self.store.units.values()
                if u.operation_id == operation.id and u.code == code
            ),
            None,
        )

    async def all(self) -> Sequence[Operation]:
        return sorted(self.store.operations.values(), key=lambda o: o.id)

    async def unit_by_id(self, unit_id: int) -> Unit | None:
        return self.store.units.get(unit_id)

    async def of_person(self, telegram_user_id: int) -> Operation | None:
        person = await FakePersonRepo(self.store).by_telegram_id(telegram_user_id)
        if person is None or person.operation_id is None:
            return None
        return self.store.operations.get(person.operation_id)


class FakeChatRepo(_Repo):
    async def by_telegram_id(self, telegram_chat_id: int) -> Chat | None:
        return next(
            (c for c in self.store.chats.values() if c.telegram_chat_id == telegram_chat_id),
            None,
        )

    async def is_active(self, telegram_chat_id: int) -> bool:
        chat = await self.by_telegram_id(telegram_chat_id)
        return chat is not None and bool(chat.active)

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

    async def add(self, person: Person) -> Person:
        person.id = self.store.next_id()
        self.store.people[person.id] = person
        return person

    async def upsert(
        self,
        *,
        telegram_user_id: int,
        display_name: str,
        role: str,
        language: str | None,
        operation_id: int | None,
        unit_id: int | None,
    ) -> Person:
        person = await self.by_telegram_id(telegram_user_id)
        if person is None:
            person = await self.add(Person(telegram_user_id=telegram_user_id, rank=""))
        person.display_name = display_name[:255]
        person.role = role
        person.language = language
        person.operation_id = operation_id
        person.unit_id = unit_id
        return person

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

    async def add_report(self, report: Report) -> Report:
        report.id = self.store.next_id()
        self.store.reports.append(report)
        return report

    async def unit_reports(self, unit_id: int, limit: int) -> Sequence[Report]:
        mine = [r for r in self.store.reports if r.unit_id == unit_id]
        return sorted(mine, key=lambda r: -r.id)[:limit]

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


class FakeRelayRepo(_Repo):
    """The relay's rows over the store's chats, messages, translations and deliveries."""

    async def chat(self, telegram_chat_id: int) -> PlanChat | None:
        chat = await FakeChatRepo(self.store).by_telegram_id(telegram_chat_id)
        if chat is None:
            return None
        op = self.store.operations[chat.operation_id]
        unit = self.store.units.get(chat.unit_id) if chat.unit_id is not None else None
        return PlanChat(
            chat.id,
            bool(chat.active),
            chat.operation_id,
            chat.languages,
            chat.back_translate,
            op.glossary,
            unit.code if unit else None,
            unit.side if unit else None,
        )

    async def plan(
        self, telegram_chat_id: int, telegram_message_id: int, author_id: int | None
    ) -> PlanRows:
        chat = await self.chat(telegram_chat_id)
        if chat is None:
            return PlanRows(None, None, None, [])
        return PlanRows(
            chat,
            await self.recorded(chat.id, telegram_message_id),
            await self.author_language(author_id) if author_id is not None else None,
            await self.linked(chat.operation_id),
        )

    async def recorded(self, chat_id: int, telegram_message_id: int) -> Recorded | None:
        found = await FakeMessageRepo(self.store).by_telegram(chat_id, telegram_message_id)
        return None if found is None else Recorded(found.id, found.revision or 0)

    async def author_language(self, telegram_user_id: int) -> str | None:
        person = await FakePersonRepo(self.store).by_telegram_id(telegram_user_id)
        return person.language if person else None

    async def linked(self, operation_id: int) -> list[Target]:
        chats = await FakeChatRepo(self.store).linked(operation_id)
        return [Target(c.id, c.languages) for c in chats]

    async def sent_to(self, message_id: int) -> set[int]:
        return {
            d.target_chat_id
            for d in self.store.deliveries
            if d.message_id == message_id and d.action == "send"
        }

    async def add_message(self, values: Mapping[str, Any]) -> int:
        message = Message(**values)
        return (await FakeMessageRepo(self.store).add_message(message)).id

    async def edit_message(self, message_id: int, **values: Any) -> Message:
        message = self.store.messages[message_id]
        for name, value in values.items():
            setattr(message, name, value)
        return message

    async def record_copies(
        self,
        *,
        message: Message,
        translations: Mapping[str, TranslationRecord],
        targets: Sequence[Chat | Target],
        now: datetime,
        action: str = "send",
        extra: Sequence[Delivery] = (),
        lead_events: Sequence[PendingEvent] = (),
    ) -> int:
        self.store.fail("relay.record_copies")
        revision = message.revision or 0
        for lang, tr in translations.items():
            self.store.translations.append((message.id, revision, lang, tr))
        rows = [
            Delivery(
                id=self.store.next_id(),
                message_id=message.id,
                revision=revision,
                target_chat_id=target.id,
                action=action,
                target_language=target.languages,
                state="pending",
                attempts=0,
                created_at=now,
            )
            for target in targets
        ]
        for row in extra:
            row.id = self.store.next_id()
            rows.append(row)
        self.store.deliveries.extend(rows)
        for e in lead_events:
            self.store.events.append(
                AuditRecord(
                    e.event_type, e.actor, e.outcome, dict(e.payload or {}), e.operation_id
                )
            )
        for lang in translations:
            self.store.events.append(
                AuditRecord(
                    "translation.made",
                    "daraja",
                    "ok",
                    {"message_id": message.id, "target": lang},
                    message.operation_id,
                )
            )
        return len(rows)


class FakeCodeRepo(_Repo):
    async def add(self, code: EnrollmentCode) -> EnrollmentCode:
        code.id = self.store.next_id()
        self.store.codes[code.id] = code
        return code

    async def by_hash(self, code_hash: str) -> EnrollmentCode | None:
        return next((c for c in self.store.codes.values() if c.code_hash == code_hash), None)

    async def mark_used(self, code: EnrollmentCode, *, by: int, at: datetime) -> None:
        code.used_at = at
        code.used_by = by


class FakeAttemptRepo(_Repo):
    async def get(self, scope: str, subject: int) -> AttemptCounter | None:
        return next(
            (a for a in self.store.attempts if (a.scope, a.subject) == (scope, subject)), None
        )

    async def get_or_add(
        self, scope: str, subject: int, now: datetime
    ) -> tuple[AttemptCounter, bool]:
        row = await self.get(scope, subject)
        if row is not None:
            return row, False
        row = AttemptCounter(
            id=self.store.next_id(),
            scope=scope,
            subject=subject,
            window_start=now,
            failures=0,
            lockouts=0,
        )
        self.store.attempts.append(row)
        return row, True

    async def drop_quiet(self, before: datetime) -> None:
        self.store.attempts = [
            a
            for a in self.store.attempts
            if not (
                a.window_start < before and (a.locked_until is None or a.locked_until < before)
            )
        ]

    async def delete(self, scope: str, subject: int) -> None:
        self.store.attempts = [
            a for a in self.store.attempts if (a.scope, a.subject) != (scope, subject)
        ]


class FakeRefusalRepo(_Repo):
    async def get(
        self, actor: str, chat_id: int, reason: str, command: str
    ) -> RefusalCount | None:
        key = (actor, chat_id, reason, command)
        return next(
            (
                r
                for r in self.store.refusal_counts
                if (r.actor, r.chat_id, r.reason, r.command) == key
            ),
            None,
        )

    async def get_or_add(
        self, actor: str, chat_id: int, reason: str, command: str, now: datetime
    ) -> tuple[RefusalCount, bool]:
        row = await self.get(actor, chat_id, reason, command)
        if row is not None:
            return row, False
        row = RefusalCount(
            id=self.store.next_id(),
            actor=actor,
            chat_id=chat_id,
            reason=reason,
            command=command,
            window_start=now,
            pending=0,
        )
        self.store.refusal_counts.append(row)
        return row, True

    async def ended(self, before: datetime) -> Sequence[RefusalCount]:
        return [r for r in self.store.refusal_counts if r.window_start <= before and r.pending]

    async def drop_idle(self, before: datetime) -> None:
        self.store.refusal_counts = [
            r
            for r in self.store.refusal_counts
            if not (r.window_start <= before and not r.pending)
        ]

    async def tell(self, telegram_chat_id: int, now: datetime) -> bool:
        if telegram_chat_id in self.store.told_chats:
            return False
        self.store.told_chats.add(telegram_chat_id)
        return True

    async def forget(self, telegram_chat_id: int) -> None:
        self.store.told_chats.discard(telegram_chat_id)


class FakeAccessRepo(_Repo):
    async def revoked_at(self, telegram_user_id: int) -> datetime | None:
        person = await FakePersonRepo(self.store).by_telegram_id(telegram_user_id)
        return person.revoked_at if person else None

    async def hold_copies_of_author(self, telegram_user_id: int) -> int:
        mine = {m.id for m in self.store.messages.values() if m.author_user_id == telegram_user_id}
        held = [d for d in self.store.deliveries if d.message_id in mine and d.state == "pending"]
        for d in held:
            d.state, d.last_error = "failed", "revoked"
        return len(held)
