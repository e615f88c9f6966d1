"""Cutting access off: revoke a person, a chat or an enrollment code, retire a unit, change a
person's role, and list people, codes and chats with their state.

A lost or captured phone must stop working at once: a revoked person's later messages are
refused in every chat and never relayed (the gate asks `is_revoked` for every message), a
revoked chat is no longer enrolled, a revoked code cannot be used, and a retired unit takes no
new codes while its chats and open codes are cut off with it. Nothing is deleted: the rows stay
with who revoked them and when. Every change (and every refused attempt) is an audit event in
the same transaction; the CLI's actor is `cli:<OS user>`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain import Role
from bot.errors import AccessDenied, NotFound, UserInputError
from bot.services.enrollment import (
    CODE_RE,
    Caller,
    append_enrollment_event,
    hash_code,
    normalise_code,
)
from bot.services.refusals import audit_refusal, audit_refusals
from storage.audit import AuditChain
from storage.db import Database
from storage.models import Chat, EnrollmentCode, Operation, Person, Unit, utcnow
from storage.repositories import OperationRepo
from storage.uow import Storage, UnitOfWork

# What `revoke` accepts, in the order of the CLI's help.
TARGETS = ("person", "code", "chat", "unit")


@dataclass
class RefusalMemory:
    """Remembers which (chat, person) pairs were already told, bounded and per process: a
    captured phone must not make the bot flood a group with refusals."""

    capacity: int = 10_000

    def __post_init__(self) -> None:
        self._told: OrderedDict[int, None] = OrderedDict()

    def first_time(self, key: int) -> bool:
        """True the first time a key is seen (then it is remembered)."""
        if key in self._told:
            self._told.move_to_end(key)
            return False
        self._told[key] = None
        if len(self._told) > self.capacity:
            self._told.popitem(last=False)
        return True


@dataclass(frozen=True)
class PersonState:
    """One person as `people` lists them."""

    user_id: int
    name: str
    role: str
    language: str | None
    operation: str | None
    unit: str | None
    state: str  # active | revoked
    revoked_at: datetime | None
    revoked_by: str | None


@dataclass(frozen=True)
class CodeState:
    """One enrollment code as `codes` lists them (the code itself is never stored)."""

    id: int
    kind: str
    operation: str
    unit: str | None
    role: str | None
    languages: str
    state: str  # active | used | expired | revoked
    expires_at: datetime
    created_at: datetime
    used_by: int | None
    hash_prefix: str


@dataclass(frozen=True)
class ChatState:
    """One enrolled chat as `chats` lists them."""

    chat_id: int
    title: str
    operation: str
    unit: str | None
    languages: str
    command_chat: bool
    state: str  # active | revoked
    revoked_at: datetime | None


@dataclass(frozen=True)
class UnitRetired:
    """What retiring a unit cut off."""

    operation: str
    unit: str
    chats: tuple[int, ...]
    codes: int
    people: int  # who still names the unit: revoke them one by one if they must go too


def code_state(code: EnrollmentCode, now: datetime) -> str:
    """active, used, expired or revoked (revoked wins: an admin decided it)."""
    if code.revoked_at is not None:
        return "revoked"
    if code.used_at is not None:
        return "used"
    if code.expires_at <= now:
        return "expired"
    return "active"


class RevocationService:
    """Who is cut off, and the listings an admin checks that against."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        admin_ids: Sequence[int],
        *,
        clock: Callable[[], datetime] = utcnow,
        storage: Storage | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.storage = storage or Storage(db, audit)
        self.admin_ids = frozenset(admin_ids)
        self.clock = clock
        # Groups already told that a revoked person's messages are refused (see the gate).
        self.told = RefusalMemory()

    async def is_revoked(self, user_id: int) -> bool:
        """Whether this Telegram user was revoked (admins from settings never are)."""
        if user_id in self.admin_ids:
            return False
        revoked_at = await self.storage.read(lambda uow: uow.access.revoked_at(user_id))
        return revoked_at is not None

    # --- people -----------------------------------------------------------------------------

    async def revoke_person(self, caller: Caller, user_id: int) -> PersonState:
        """Cut a person off now: role kept for the record, every later message refused."""
        async with self._admin_uow(caller, "revoke") as uow:
            person = await self._person(uow, user_id)
            if person.revoked_at is None:
                person.revoked_at = self.clock()
                person.revoked_by = caller.audit_actor
                # Copies of what they wrote that have not gone out yet stay unsent.
                held = await uow.access.hold_copies_of_author(user_id)
                await self._audit(
                    uow,
                    caller,
                    "admin.person_revoked",
                    operation_id=person.operation_id,
                    payload={"user_id": user_id, "role": person.role, "copies_held": held},
                )
            return await self._person_state(uow, person)

    async def reinstate_person(self, caller: Caller, user_id: int) -> PersonState:
        """Give a revoked person their access back (same role, unit and language)."""
        async with self._admin_uow(caller, "reinstate") as uow:
            person = await self._person(uow, user_id)
            if person.revoked_at is not None:
                person.revoked_at = None
                person.revoked_by = None
                await self._audit(
                    uow,
                    caller,
                    "admin.person_reinstated",
                    operation_id=person.operation_id,
                    payload={"user_id": user_id, "role": person.role},
                )
            return await self._person_state(uow, person)

    async def set_role(self, caller: Caller, user_id: int, role: str) -> PersonState:
        """Change an enrolled person's role (officer, commander or auditor)."""
        role_v = _person_role(role)
        async with self._admin_uow(caller, "set_role") as uow:
            person = await self._person(uow, user_id)
            if person.revoked_at is not None:
                raise UserInputError(
                    f"person {user_id} is revoked: reinstate them first",
                    key="revoke.person_is_revoked",
                    user=str(user_id),
                )
            old = person.role
            if old != role_v.value:
                person.role = role_v.value
                await self._audit(
                    uow,
                    caller,
                    "admin.role_changed",
                    operation_id=person.operation_id,
                    payload={"user_id": user_id, "from": old, "to": role_v.value},
                )
            return await self._person_state(uow, person)

    async def people(self, caller: Caller, operation: str | None = None) -> list[PersonState]:
        """Everyone enrolled (in one operation, or all), with their state."""
        async with self._admin_uow(caller, "people") as uow:
            op_id = (await _operation(uow.operations, operation)).id if operation else None
            rows = await uow.access.enrolled_people(op_id)
            return [await self._person_state(uow, p) for p in rows]

    # --- codes ------------------------------------------------------------------------------

    async def revoke_code(self, caller: Caller, ref: str) -> CodeState:
        """Make a code unusable: by its listed id, or by the code text itself."""
        async with self._admin_uow(caller, "revoke") as uow:
            code = await self._code(uow, ref)
            now = self.clock()
            state = code_state(code, now)
            if state == "used":
                raise UserInputError(
                    f"code {code.id} was already used: revoke the person or chat it enrolled",
                    key="revoke.code_used",
                    code=str(code.id),
                )
            if state != "revoked":
                code.revoked_at = now
                code.revoked_by = caller.audit_actor
                await self._audit(
                    uow,
                    caller,
                    "admin.code_revoked",
                    operation_id=code.operation_id,
                    payload={"code_id": code.id, "kind": code.kind, "was": state},
                )
            return await self._code_state(uow, code, now)

    async def codes(self, caller: Caller, operation: str | None = None) -> list[CodeState]:
        """Every enrollment code (of one operation, or all), newest first, with its state."""
        async with self._admin_uow(caller, "codes") as uow:
            op_id = (await _operation(uow.operations, operation)).id if operation else None
            now = self.clock()
            rows = await uow.access.codes(op_id)
            return [await self._code_state(uow, c, now) for c in rows]

    # --- chats and units --------------------------------------------------------------------

    async def revoke_chat(self, caller: Caller, chat_id: int) -> ChatState:
        """Unenroll a chat now: nothing more is relayed from or to it (a new code re-enrolls)."""
        async with self._admin_uow(caller, "revoke") as uow:
            chat = await uow.chats.by_telegram_id(chat_id)
            if chat is None:
                raise NotFound(
                    f"no enrolled chat {chat_id}", key="revoke.unknown_chat", chat=str(chat_id)
                )
            if chat.active:
                await self._cut_chat(uow, chat, caller)
                held = await uow.access.hold_copies_to([chat.id])
                await self._audit(
                    uow,
                    caller,
                    "admin.chat_revoked",
                    operation_id=chat.operation_id,
                    payload={"chat_id": chat_id, "copies_held": held},
                )
            return await self._chat_state(uow, chat)

    async def chats(self, caller: Caller, operation: str | None = None) -> list[ChatState]:
        """Every chat ever enrolled (in one operation, or all), with its state."""
        async with self._admin_uow(caller, "chats") as uow:
            op_id = (await _operation(uow.operations, operation)).id if operation else None
            rows = await uow.access.chats(op_id)
            return [await self._chat_state(uow, c) for c in rows]

    async def retire_unit(self, caller: Caller, operation: str, unit: str) -> UnitRetired:
        """Retire a unit: no new codes, its chats and open codes cut off, the board drops it."""
        async with self._admin_uow(caller, "revoke") as uow:
            ops = uow.operations
            op = await _operation(ops, operation)
            row = await ops.unit(op, unit.strip())
            if row is None:
                raise NotFound(
                    f"no unit {unit!r} in {op.name}", key="error.unknown_unit", unit=unit[:32]
                )
            now = self.clock()
            chats = await uow.access.unit_chats(row.id)
            for chat in chats:
                await self._cut_chat(uow, chat, caller)
            held = await uow.access.hold_copies_to([c.id for c in chats])
            codes = await uow.access.unit_open_codes(row.id, now)
            for code in codes:
                code.revoked_at, code.revoked_by = now, caller.audit_actor
            people = await uow.access.unit_people(row.id)
            if row.retired_at is None:
                row.retired_at, row.retired_by = now, caller.audit_actor
                await self._audit(
                    uow,
                    caller,
                    "admin.unit_retired",
                    operation_id=op.id,
                    payload={
                        "unit": row.code,
                        "chats": [c.telegram_chat_id for c in chats],
                        "codes": [c.id for c in codes],
                        "copies_held": held,
                    },
                )
            return UnitRetired(
                operation=op.name,
                unit=row.code,
                chats=tuple(c.telegram_chat_id for c in chats),
                codes=len(codes),
                people=sum(1 for p in people if p.revoked_at is None),
            )

    # --- helpers ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _admin_uow(self, caller: Caller, command: str) -> AsyncIterator[UnitOfWork]:
        """One transaction for an admin; a non-admin's attempt is refused and audited."""

        async def record(exc: object, reason: str) -> None:
            await audit_refusal(
                self.storage,
                component="access",
                event_type="access.refused",
                actor=caller.audit_actor,
                reason=reason,
                chat_id=None,
                detail={"command": command},
            )

        async with audit_refusals(record, marked_only=True):
            if not (caller.is_admin or caller.user_id in self.admin_ids):
                # Refused before any transaction opens: nothing to roll back.
                raise AccessDenied("admins only", key="error.admins_only", refused="admins_only")
        async with self.storage() as uow:
            yield uow

    async def _cut_chat(self, uow: UnitOfWork, chat: Chat, caller: Caller) -> None:
        # Forget that the chat was told it is not enrolled: its next message is told again.
        await uow.refusals.forget(chat.telegram_chat_id)
        chat.active = False
        chat.revoked_at = self.clock()
        chat.revoked_by = caller.audit_actor

    async def _person(self, uow: UnitOfWork, user_id: int) -> Person:
        if user_id in self.admin_ids:
            raise UserInputError(
                f"{user_id} is an admin named in DARAJA_ADMIN_IDS: remove them there",
                key="revoke.settings_admin",
                user=str(user_id),
            )
        person = await uow.people.by_telegram_id(user_id)
        if person is None or not person.role:
            raise NotFound(
                f"no enrolled person with Telegram id {user_id} (see `daraja admin people`)",
                key="revoke.unknown_person",
                user=str(user_id),
            )
        return person

    async def _code(self, uow: UnitOfWork, ref: str) -> EnrollmentCode:
        ref = ref.strip()
        row: EnrollmentCode | None = None
        if ref.isdigit():
            row = await uow.access.code(int(ref))
        elif CODE_RE.match(normalise_code(ref)):
            row = await uow.codes.by_hash(hash_code(ref))
        if row is None:
            raise NotFound(
                f"no enrollment code {ref!r} (see `daraja admin codes`)",
                key="revoke.unknown_code",
                code=ref[:40],
            )
        return row

    async def _person_state(self, uow: UnitOfWork, p: Person) -> PersonState:
        op, unit = await _op_unit(uow, p.operation_id, p.unit_id)
        return PersonState(
            user_id=p.telegram_user_id,
            name=p.display_name,
            role=p.role,
            language=p.language,
            operation=op.name if op else None,
            unit=unit.code if unit else None,
            state="revoked" if p.revoked_at is not None else "active",
            revoked_at=p.revoked_at,
            revoked_by=p.revoked_by,
        )

    async def _code_state(self, uow: UnitOfWork, c: EnrollmentCode, now: datetime) -> CodeState:
        op, unit = await _op_unit(uow, c.operation_id, c.unit_id)
        return CodeState(
            id=c.id,
            kind=c.kind,
            operation=op.name if op else "?",
            unit=unit.code if unit else None,
            role=c.role,
            languages=c.language,
            state=code_state(c, now),
            expires_at=c.expires_at,
            created_at=c.created_at,
            used_by=c.used_by,
            hash_prefix=c.code_hash[:12],
        )

    async def _chat_state(self, uow: UnitOfWork, c: Chat) -> ChatState:
        op, unit = await _op_unit(uow, c.operation_id, c.unit_id)
        return ChatState(
            chat_id=c.telegram_chat_id,
            title=c.title,
            operation=op.name if op else "?",
            unit=unit.code if unit else None,
            languages=c.languages,
            command_chat=c.is_command,
            state="active" if c.active else "revoked",
            revoked_at=c.revoked_at,
        )

    async def _audit(
        self,
        uow: UnitOfWork,
        caller: Caller,
        event_type: str,
        *,
        operation_id: int | None,
        payload: dict[str, Any],
    ) -> None:
        await append_enrollment_event(
            uow, caller, event_type, operation_id=operation_id, payload=payload
        )


async def _op_unit(
    uow: UnitOfWork, operation_id: int | None, unit_id: int | None
) -> tuple[Operation | None, Unit | None]:
    """The operation and unit a row names (None where it names none)."""
    ops = uow.operations
    op = await ops.by_id(operation_id) if operation_id else None
    unit = await ops.unit_by_id(unit_id) if unit_id else None
    return op, unit


def _person_role(role: str) -> Role:
    try:
        role_v = Role(role.strip().lower())
    except ValueError:
        raise UserInputError(
            f"unknown role {role!r} (officer, commander or auditor)",
            key="error.bad_role",
            role=role[:16],
        ) from None
    if role_v is Role.ADMIN:
        raise UserInputError(
            "admins are named in DARAJA_ADMIN_IDS, not given a role", key="error.admin_by_code"
        )
    return role_v


async def _operation(ops: OperationRepo, name: str) -> Operation:
    op = await ops.by_name(name.strip())
    if op is None:
        raise NotFound(
            f"no operation named {name!r} (see `daraja admin operations`)",
            key="error.unknown_operation",
            name=name[:64],
        )
    return op
