"""Enrollment and access control: operations, units, one-time codes, chats and people.

Admins (from settings) create operations and units and issue one-time, expiring codes bound to
a unit, a role and a language. A Telegram group admin binds a group with `/enroll CODE`; a person
gets a role with `/join CODE` in a private chat. Codes are stored as SHA-256 hashes, compared in
constant time, single-use and expiring. Every action, and every refusal, is an audit event
written in the same transaction as the change it records; refusals are audited in
aggregate and wrong codes lead to lockouts (`bot.services.limits`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import LANGUAGES, Role, Side, parse_languages
from bot.errors import (
    AccessDenied,
    DarajaError,
    EnrollmentError,
    NotFound,
    TooManyAttempts,
    UserInputError,
)
from bot.services.limits import AttemptLimiter, CodeLimits, RefusalAudit
from bot.services.refusals import audit_refusals
from storage.audit import AuditChain
from storage.db import Database
from storage.models import Chat, EnrollmentCode, Operation, Person, Unit, utcnow
from storage.repositories import OperationRepo
from storage.uow import Storage, UnitOfWork

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_RE = re.compile(r"^[A-Z0-9-]{4,40}$")
NAME_RE = re.compile(r"^[\w][\w .'-]{0,63}$")
UNIT_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
DEFAULT_CODE_TTL = timedelta(hours=48)
MAX_CODE_TTL = timedelta(days=30)
# Refusals that are a wrong code (counted towards a lockout), from `_consume`.
_CODE_FAILURES = ("code.malformed", "code.unknown", "code.wrong_kind", "code.used", "code.expired")


def hash_code(code: str) -> str:
    """The stored form of a code: SHA-256 of its normalised text."""
    return hashlib.sha256(normalise_code(code).encode("ascii", "replace")).hexdigest()


def normalise_code(code: str) -> str:
    """Upper-case, strip spaces; a code is typed by hand in the field."""
    return code.strip().upper().replace(" ", "")


def _actor(caller: Caller | None) -> str:
    """The audit actor of a caller (the CLI names its OS user, a Telegram caller its id)."""
    if caller is None:
        return "unknown"
    return caller.actor or f"tg:{caller.user_id}"


def new_code() -> str:
    """A fresh random code such as `DRJ-7KQ4-M9XT` (about 40 bits of entropy)."""
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"DRJ-{body[:4]}-{body[4:]}"


def check_timezone(name: str) -> str:
    """An IANA time zone name the zone database knows, else UserInputError naming examples."""
    from bot.errors import ConfigError
    from bot.rendering.formatting import zone

    try:
        if not name.strip():
            # An empty name would be stored and read as the default zone, silently.
            raise ConfigError("empty time zone")
        zone(name)
    except ConfigError:
        raise UserInputError(
            f"{name[:64]!r} is not a known time zone: use an IANA name such as "
            "America/Port-au-Prince or Africa/Nairobi",
            key="error.bad_timezone",
            tz=name[:64],
        ) from None
    return name


@dataclass(frozen=True)
class Caller:
    """Who is asking, as Telegram says; `is_admin` comes from settings, not the database."""

    user_id: int
    display_name: str
    is_admin: bool = False
    telegram_language: str | None = None
    # Who the audit log names; empty: the Telegram user (`tg:ID`). The CLI sets its OS user.
    actor: str = ""

    @property
    def audit_actor(self) -> str:
        """The actor the audit log records for this caller."""
        return self.actor or f"tg:{self.user_id}"


async def append_enrollment_event(
    uow: UnitOfWork,
    caller: Caller,
    event_type: str,
    *,
    operation_id: int | None,
    payload: dict[str, object],
) -> None:
    """Append one `enrollment` audit event on the caller's behalf, in the caller's
    transaction (enrolment and revocation both record through it)."""
    await uow.audit(
        component="enrollment",
        event_type=event_type,
        actor=caller.audit_actor,
        operation_id=operation_id,
        payload=payload,
    )


@dataclass(frozen=True)
class IssuedCode:
    """A freshly issued code; the plaintext exists only here, never in the database."""

    code: str
    kind: str
    operation: str
    unit: str | None
    role: str | None
    languages: tuple[str, ...]
    expires_at: datetime


@dataclass(frozen=True)
class ChatEnrollment:
    """The result of `/enroll`."""

    operation: str
    unit: str | None
    languages: tuple[str, ...]
    is_command: bool


@dataclass(frozen=True)
class Identity:
    """What `/whoami` shows."""

    user_id: int
    role: Role | None
    language: str | None
    operation: str | None
    unit: str | None
    unit_side: str | None
    # An admin cut this person off (`daraja admin revoke person`): no role until reinstated.
    revoked: bool = False


class EnrollmentService:
    """The rules of who belongs to which operation, in which role and language."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        admin_ids: Sequence[int],
        *,
        clock: Callable[[], datetime] = utcnow,
        limits: CodeLimits | None = None,
        refusal_window: timedelta = timedelta(minutes=10),
        storage: Storage | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        # Tests hand a store without a database (tests/support/uow.py).
        self.storage = storage or Storage(db, audit)
        self.admin_ids = frozenset(admin_ids)
        self.clock = clock
        self.limiter = AttemptLimiter(limits or CodeLimits(), clock=lambda: self.clock())
        self.refusals = RefusalAudit(window=refusal_window, clock=lambda: self.clock())

    def is_admin(self, user_id: int) -> bool:
        """Whether settings name this user an admin."""
        return user_id in self.admin_ids

    # --- admin actions -------------------------------------------------------------------

    async def create_operation(
        self,
        caller: Caller,
        name: str,
        *,
        default_language: str = "en",
        timezone: str = "America/Port-au-Prince",
        report_interval_min: int = 60,
    ) -> Operation:
        """Create an operation (admins only)."""
        name = name.strip()
        if not NAME_RE.match(name):
            raise UserInputError(
                f"bad operation name {name!r}: 1-64 letters, digits, spaces, . ' -",
                key="error.bad_name",
                name=name[:64],
            )
        if default_language not in LANGUAGES:
            raise UserInputError(
                f"unsupported language {default_language!r}",
                key="error.bad_language",
                lang=default_language[:8],
            )
        if not 5 <= report_interval_min <= 24 * 60:
            raise UserInputError(
                "report interval must be 5..1440 minutes", key="error.bad_interval"
            )
        check_timezone(timezone)
        async with self._uow(caller, command="admin") as uow:
            self._require_admin(caller)
            ops = uow.operations
            if await ops.by_name(name) is not None:
                raise UserInputError(
                    f"operation {name!r} exists already", key="error.operation_exists", name=name
                )
            op = await ops.add(
                name=name,
                default_language=default_language,
                timezone=timezone,
                report_interval_min=report_interval_min,
            )
            await self._audit(
                uow,
                caller,
                "admin.operation_created",
                operation_id=op.id,
                payload={"name": name, "default_language": default_language},
            )
            return op

    async def add_unit(
        self, caller: Caller, operation: str, code: str, *, name: str, side: str, language: str
    ) -> Unit:
        """Add a unit (code such as `KE-3`, side PNH or MSS, home language) to an operation."""
        code = code.strip()
        if not UNIT_CODE_RE.match(code):
            raise UserInputError(
                f"bad unit code {code!r}: letters, digits, - and _ (max 32)",
                key="error.bad_unit_code",
                code=code[:32],
            )
        side_u = side.strip().upper()
        if side_u not in (Side.PNH, Side.MSS):
            raise UserInputError(
                f"side must be PNH or MSS, not {side!r}", key="error.bad_side", side=side[:8]
            )
        if language not in LANGUAGES:
            raise UserInputError(
                f"unsupported language {language!r}", key="error.bad_language", lang=language[:8]
            )
        async with self._uow(caller, command="admin") as uow:
            self._require_admin(caller)
            ops = uow.operations
            op = await self._operation(ops, operation)
            if await ops.unit(op, code) is not None:
                raise UserInputError(
                    f"unit {code} exists already in {op.name}", key="error.unit_exists", unit=code
                )
            unit = await ops.add_unit(
                operation=op,
                code=code,
                name=name.strip()[:128] or code,
                side=side_u,
                language=language,
            )
            await self._audit(
                uow,
                caller,
                "admin.unit_added",
                operation_id=op.id,
                payload={"unit": code, "side": side_u, "language": language},
            )
            return unit

    async def issue_code(
        self,
        caller: Caller,
        operation: str,
        *,
        kind: str,
        unit: str | None = None,
        role: str | None = None,
        languages: str = "",
        ttl: timedelta = DEFAULT_CODE_TTL,
        is_command: bool = False,
    ) -> IssuedCode:
        """Issue a one-time code: `chat` (binds a group) or `person` (gives a role)."""
        if kind not in ("chat", "person"):
            raise UserInputError("kind must be chat or person", key="error.bad_code_kind")
        if not timedelta(minutes=1) <= ttl <= MAX_CODE_TTL:
            raise UserInputError("code lifetime must be 1 minute .. 30 days", key="error.bad_ttl")
        role_v: Role | None = None
        if kind == "person":
            try:
                role_v = Role((role or "").lower())
            except ValueError:
                roles = ", ".join(r.value for r in Role if r is not Role.ADMIN)
                said = f"unknown role {role!r}" if role else "a person code needs a role"
                raise UserInputError(
                    f"{said}: use one of {roles}", key="error.bad_role", role=(role or "")[:16]
                ) from None
            if role_v is Role.ADMIN:
                raise UserInputError(
                    "admins are named in DARAJA_ADMIN_IDS, not enrolled by code",
                    key="error.admin_by_code",
                )
        async with self._uow(caller, command="admin") as uow:
            self._require_admin(caller)
            ops = uow.operations
            op = await self._operation(ops, operation)
            unit_row: Unit | None = None
            if unit:
                unit_row = await ops.unit(op, unit)
                if unit_row is None:
                    raise NotFound(
                        f"no unit {unit!r} in {op.name}", key="error.unknown_unit", unit=unit[:32]
                    )
                _refuse_retired(unit_row)
            elif kind == "chat" and not is_command:
                raise UserInputError(
                    "a chat code needs a unit (or --command for the commanders' chat)",
                    key="error.chat_code_needs_unit",
                )
            if languages:
                try:
                    langs = parse_languages(languages)
                except ValueError as exc:
                    raise UserInputError(
                        str(exc), key="error.bad_language", lang=languages[:16]
                    ) from None
            elif unit_row is not None:
                langs = [unit_row.language]
            else:
                langs = [op.default_language]
            if kind == "person" and len(langs) != 1:
                raise UserInputError("a person reads one language", key="error.one_language")
            code = new_code()
            expires = self.clock() + ttl
            await uow.codes.add(
                EnrollmentCode(
                    code_hash=hash_code(code),
                    kind=kind,
                    operation_id=op.id,
                    unit_id=unit_row.id if unit_row else None,
                    role=role_v.value if role_v else None,
                    language=",".join(langs),
                    is_command=is_command,
                    expires_at=expires,
                    created_by=caller.user_id,
                )
            )
            await self._audit(
                uow,
                caller,
                "admin.code_issued",
                operation_id=op.id,
                payload={
                    "kind": kind,
                    "unit": unit_row.code if unit_row else None,
                    "role": role_v.value if role_v else None,
                    "languages": langs,
                    "expires_at": expires.isoformat(),
                    "code_hash_prefix": hash_code(code)[:12],
                },
            )
            return IssuedCode(
                code=code,
                kind=kind,
                operation=op.name,
                unit=unit_row.code if unit_row else None,
                role=role_v.value if role_v else None,
                languages=tuple(langs),
                expires_at=expires,
            )

    # --- people and chats ------------------------------------------------------------------

    async def enroll_chat(
        self,
        caller: Caller,
        code: str,
        *,
        chat_id: int,
        chat_title: str,
        chat_type: str,
        caller_is_chat_admin: bool,
    ) -> ChatEnrollment:
        """Bind a group to the unit of a chat code (`/enroll CODE` by a group admin)."""
        if chat_type not in ("group", "supergroup"):
            raise EnrollmentError("enroll in a group", key="enroll.only_groups")
        await self._refuse_if_locked(caller, chat_id=chat_id, command="enroll")
        async with self._uow(caller, chat_id=chat_id, command="enroll") as uow:
            chats = uow.chats
            if not caller_is_chat_admin and not self.is_admin(caller.user_id):
                raise AccessDenied(
                    "only a group admin may enroll",
                    key="enroll.not_group_admin",
                    refused="enroll.not_group_admin",
                )
            existing = await chats.by_telegram_id(chat_id)
            if existing is not None and existing.active:
                raise EnrollmentError(
                    "chat already enrolled", key="enroll.already", refused="enroll.already"
                )
            row = await self._consume(uow, caller, code, kind="chat", chat_id=chat_id)
            await self.limiter.succeeded(uow, caller.user_id, chat_id)
            await uow.refusals.forget(chat_id)
            langs = tuple(parse_languages(row.language))
            op = await uow.operations.by_id(row.operation_id)
            unit = await uow.operations.unit_by_id(row.unit_id) if row.unit_id else None
            assert op is not None
            if existing is not None:  # re-enrolling a chat that was deactivated
                existing.operation_id = op.id
                existing.unit_id = unit.id if unit else None
                existing.languages = ",".join(langs)
                existing.is_command = row.is_command
                existing.active = True
                existing.enrolled_by = caller.user_id
                existing.enrolled_at = self.clock()
            else:
                await chats.add(
                    telegram_chat_id=chat_id,
                    operation_id=op.id,
                    unit_id=unit.id if unit else None,
                    title=chat_title,
                    chat_type=chat_type,
                    languages=langs,
                    is_command=row.is_command,
                    enrolled_by=caller.user_id,
                )
            await self._audit(
                uow,
                caller,
                "enroll.chat",
                operation_id=op.id,
                payload={
                    "chat_id": chat_id,
                    "unit": unit.code if unit else None,
                    "languages": list(langs),
                    "command_chat": row.is_command,
                },
            )
            return ChatEnrollment(
                operation=op.name,
                unit=unit.code if unit else None,
                languages=langs,
                is_command=row.is_command,
            )

    async def set_back_translate(
        self, caller: Caller, *, chat_id: int, enabled: bool, caller_is_chat_admin: bool
    ) -> bool:
        """Turn the sender's back-translation check on or off for an enrolled group
        (`/backtranslate on|off`, the group's Telegram admins or Daraja admins)."""
        async with self._uow(caller, chat_id=chat_id, command="backtranslate") as uow:
            if not caller_is_chat_admin and not self.is_admin(caller.user_id):
                raise AccessDenied(
                    "only a group admin may change back-translation",
                    key="backtranslate.not_group_admin",
                    refused="backtranslate.not_group_admin",
                )
            chat = await uow.chats.by_telegram_id(chat_id)
            if chat is None or not chat.active:
                raise EnrollmentError(
                    "chat not enrolled",
                    key="backtranslate.only_groups",
                    refused="chat.not_enrolled",
                )
            was = bool(chat.back_translate)
            chat.back_translate = enabled
            await self._audit(
                uow,
                caller,
                "chat.back_translate",
                operation_id=chat.operation_id,
                payload={"chat_id": chat_id, "enabled": enabled, "was": was},
            )
            return enabled

    async def join(self, caller: Caller, code: str, *, chat_type: str) -> Identity:
        """Give a person the role, unit and language of a person code (`/join CODE`, private)."""
        if chat_type != "private":
            raise EnrollmentError("join in a private chat", key="join.only_private")
        await self._refuse_if_locked(caller, chat_id=caller.user_id, command="join")
        async with self._uow(caller, chat_id=caller.user_id, command="join") as uow:
            await _refuse_revoked(uow, caller)
            row = await self._consume(uow, caller, code, kind="person", chat_id=caller.user_id)
            await self.limiter.succeeded(uow, caller.user_id, caller.user_id)
            op = await uow.operations.by_id(row.operation_id)
            unit = await uow.operations.unit_by_id(row.unit_id) if row.unit_id else None
            assert op is not None
            assert row.role is not None
            person = await uow.people.upsert(
                telegram_user_id=caller.user_id,
                display_name=caller.display_name,
                role=row.role,
                language=row.language,
                operation_id=op.id,
                unit_id=unit.id if unit else None,
            )
            await self._audit(
                uow,
                caller,
                "enroll.person",
                operation_id=op.id,
                payload={
                    "role": row.role,
                    "unit": unit.code if unit else None,
                    "language": row.language,
                },
            )
            return self._identity(person, op, unit)

    async def set_language(self, caller: Caller, language: str) -> str:
        """Set the language a person reads in private chats (`/lang`)."""
        lang = language.strip().lower()
        if lang not in LANGUAGES:
            raise UserInputError(
                f"unsupported language {language!r}", key="lang.unsupported", lang=language[:8]
            )
        async with self.storage() as uow:
            person = await uow.people.by_telegram_id(caller.user_id)
            if person is None:
                # Anyone may choose a language, enrolled or not; unknown people get no role.
                person = await uow.people.add(
                    Person(
                        telegram_user_id=caller.user_id,
                        display_name=caller.display_name[:255],
                        rank="",
                        role="",
                        language=lang,
                    )
                )
            old = person.language
            person.language = lang
            await self._audit(
                uow,
                caller,
                "person.language_set",
                operation_id=person.operation_id,
                payload={"from": old, "to": lang},
            )
            return lang

    async def identity(self, caller: Caller) -> Identity:
        """Who the caller is to Daraja (role from settings for admins)."""
        return await self.storage.read(lambda uow: self._identity_in(uow, caller))

    async def _identity_in(self, uow: UnitOfWork, caller: Caller) -> Identity:
        person = await uow.people.by_telegram_id(caller.user_id)
        if person is None:
            return Identity(
                user_id=caller.user_id,
                role=Role.ADMIN if self.is_admin(caller.user_id) else None,
                language=None,
                operation=None,
                unit=None,
                unit_side=None,
            )
        op = await uow.operations.by_id(person.operation_id) if person.operation_id else None
        unit = await uow.operations.unit_by_id(person.unit_id) if person.unit_id else None
        return self._identity(person, op, unit)

    async def chat(self, chat_id: int) -> Chat | None:
        """The active enrollment of a chat, if any (one read on the fast path)."""

        async def find(uow: UnitOfWork) -> Chat | None:
            chat = await uow.chats.by_telegram_id(chat_id)
            return chat if chat is not None and chat.active else None

        return await self.storage.read(find)

    async def enrolled(self, chat_id: int) -> bool:
        """Whether a chat is actively enrolled (the gate asks for every group message)."""
        return await self.storage.read(lambda uow: uow.chats.is_active(chat_id))

    async def record_refusal(
        self, caller: Caller | None, reason: str, *, chat_id: int | None, command: str | None
    ) -> None:
        """Audit a refused attempt (an unenrolled chat, a wrong role), in aggregate."""
        async with self.storage() as uow:
            await self.refusals.record(
                uow, actor=_actor(caller), reason=reason, chat_id=chat_id, command=command
            )

    async def refuse_unenrolled(
        self, caller: Caller | None, chat_id: int, command: str | None
    ) -> bool:
        """Audit (in aggregate) an attempt in a chat that is not enrolled; True if the chat
        was never told so before (the memory is in the database, so a restart keeps it)."""
        async with self.storage() as uow:
            await self.refusals.record(
                uow,
                actor=_actor(caller),
                reason="chat.not_enrolled",
                chat_id=chat_id,
                command=command,
            )
            return await uow.refusals.tell(chat_id, self.clock())

    async def tell_unenrolled(self, chat_id: int) -> bool:
        """Remember that a chat was told how to enroll (the bot was added); True if new."""
        async with self.storage() as uow:
            return await uow.refusals.tell(chat_id, self.clock())

    async def flush_refusals(self) -> int:
        """Write the refusals counted in windows that are over (returns how many attempts), and
        forget code-attempt counters that have been quiet long enough to mean nothing."""
        async with self.storage() as uow:
            await self.limiter.prune(uow)
            return await self.refusals.flush(uow)

    async def _refuse_if_locked(self, caller: Caller, *, chat_id: int, command: str) -> None:
        """Refuse a /join or /enroll unchecked while its person or chat is locked out."""
        async with self.storage() as uow:
            lockout = await self.limiter.locked(uow, caller.user_id, chat_id)
            if lockout is not None:
                await self.refusals.record(
                    uow,
                    actor=_actor(caller),
                    reason="code.locked",
                    chat_id=chat_id,
                    command=command,
                )
        if lockout is not None:
            raise TooManyAttempts(
                "too many wrong codes",
                notify=lockout.notify,
                minutes=lockout.minutes_left(self.clock()),
            )

    @asynccontextmanager
    async def _uow(
        self, caller: Caller, *, chat_id: int | None = None, command: str | None = None
    ) -> AsyncIterator[UnitOfWork]:
        """One transaction per command; a refusal is audited after the rollback, on its own
        (a wrong code is also counted towards a lockout, and the one too many says so)."""

        async def record(exc: DarajaError, reason: str) -> None:
            lockout = None
            async with self.storage() as uow:
                await self.refusals.record(
                    uow, actor=_actor(caller), reason=reason, chat_id=chat_id, command=command
                )
                if reason.startswith(_CODE_FAILURES):
                    lockout = await self.limiter.failed(uow, caller.user_id, chat_id)
            if lockout is not None:
                raise TooManyAttempts(
                    "too many wrong codes", minutes=lockout.minutes_left(self.clock())
                ) from exc

        async with audit_refusals(record, marked_only=True), self.storage() as uow:
            yield uow

    async def migrate_chat(self, old_id: int, new_id: int) -> bool:
        """Keep a group's enrollment when Telegram upgrades it to a supergroup."""
        async with self.storage() as uow:
            chat = await uow.chats.migrate(old_id, new_id)
            if chat is None:
                return False
            await uow.audit(
                component="enrollment",
                event_type="chat.migrated",
                actor="telegram",
                operation_id=chat.operation_id,
                payload={"from": old_id, "to": new_id},
            )
            return True

    # --- helpers ----------------------------------------------------------------------------

    def _require_admin(self, caller: Caller) -> None:
        if not (caller.is_admin or self.is_admin(caller.user_id)):
            raise AccessDenied("admins only", key="error.admins_only", refused="admins_only")

    async def _operation(self, ops: OperationRepo, name: str) -> Operation:
        op = await ops.by_name(name.strip())
        if op is None:
            raise NotFound(
                f"no operation named {name!r}", key="error.unknown_operation", name=name[:64]
            )
        return op

    async def _consume(
        self, uow: UnitOfWork, caller: Caller, code: str, *, kind: str, chat_id: int
    ) -> EnrollmentCode:
        normal = normalise_code(code)
        if not CODE_RE.match(normal):
            raise EnrollmentError("malformed code", key="code.unknown", refused="code.malformed")
        digest = hash_code(normal)
        row = await uow.codes.by_hash(digest)
        if row is None or not hmac.compare_digest(row.code_hash, digest):
            raise EnrollmentError("unknown code", key="code.unknown", refused="code.unknown")
        if row.kind != kind:
            raise EnrollmentError(
                "wrong kind of code",
                key="code.for_chat" if row.kind == "chat" else "code.for_person",
                refused=f"code.wrong_kind.{row.kind}",
            )
        if row.revoked_at is not None:
            raise EnrollmentError("code revoked", key="code.revoked", refused="code.revoked")
        if row.used_at is not None:
            raise EnrollmentError("code already used", key="code.used", refused="code.used")
        if row.expires_at <= self.clock():
            raise EnrollmentError("code expired", key="code.expired", refused="code.expired")
        await uow.codes.mark_used(row, by=caller.user_id, at=self.clock())
        return row

    async def _audit(
        self,
        uow: UnitOfWork,
        caller: Caller,
        event_type: str,
        *,
        operation_id: int | None,
        payload: dict[str, object],
    ) -> None:
        await append_enrollment_event(
            uow, caller, event_type, operation_id=operation_id, payload=payload
        )

    def _identity(self, person: Person, op: Operation | None, unit: Unit | None) -> Identity:
        role: Role | None
        revoked = False
        if self.is_admin(person.telegram_user_id):
            role = Role.ADMIN
        elif person.revoked_at is not None:
            role, revoked = None, True
        else:
            try:
                role = Role(person.role) if person.role else None
            except ValueError:
                role = None
        return Identity(
            user_id=person.telegram_user_id,
            role=role,
            language=person.language,
            operation=op.name if op else None,
            unit=unit.code if unit else None,
            unit_side=unit.side if unit else None,
            revoked=revoked,
        )


def _refuse_retired(unit: Unit) -> None:
    """A retired unit takes no new codes."""
    if unit.retired_at is not None:
        raise UserInputError(
            f"unit {unit.code} is retired", key="error.unit_retired", unit=unit.code
        )


async def _refuse_revoked(uow: UnitOfWork, caller: Caller) -> None:
    """A revoked person cannot take a new code: an admin reinstates them instead."""
    person = await uow.people.by_telegram_id(caller.user_id)
    if person is not None and person.revoked_at is not None:
        raise AccessDenied("person revoked", key="access.revoked", refused="person.revoked")
