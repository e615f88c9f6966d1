"""The auditor's view of what was said and received: `/log` and `/search`, as plain data.

Only people with the auditor role, in a private chat, may read; every read, and every refused
or malformed attempt, is itself an `audit.read` event (what was asked, never the text read).
An auditor enrolled in an operation sees that operation only. Results come in pages of
messages, oldest first, each with its original, detected language and every translation with
the deliveries that carried it; `next_cursor` fetches the following page. Handlers render these
objects in the auditor's language and split them to Telegram's limits.

`resolve_scope` turns `--operation`/`--unit` names into filters for the CLI export as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain import Role
from bot.domain.audit_dates import TimeRange, looks_like_time, parse_range
from bot.errors import AccessDenied, DarajaError, NotFound, UserInputError
from bot.services.enrollment import Caller
from bot.services.refusals import audit_refusals
from storage.audit import READ_EVENT, AuditChain, AuditRecord
from storage.audit_export import unit_matcher
from storage.db import Database
from storage.message_log import LogRow, LogRows
from storage.models import Message, Person, utcnow
from storage.uow import Storage, UnitOfWork

DEFAULT_PAGE = 5
MAX_PAGE = 20
MIN_SEARCH = 2
MAX_SEARCH = 200


# --- plain results ---


@dataclass(frozen=True)
class DeliveryView:
    """One copy sent (or tried) to a partner chat."""

    chat_title: str
    telegram_chat_id: int
    unit: str | None
    action: str
    state: str
    attempts: int
    sent_at: datetime | None


@dataclass(frozen=True)
class TranslationView:
    """One translation of a message and the deliveries that carried it."""

    language: str
    text: str
    route: str
    models: tuple[str, ...]
    score: float | None
    flags: tuple[str, ...]
    deliveries: tuple[DeliveryView, ...]
    purged_at: datetime | None = None  # retention emptied the text


@dataclass(frozen=True)
class LogEntry:
    """One message as written, with everything each side received."""

    message_id: int
    at: datetime
    edited_at: datetime | None
    revision: int
    operation: str
    unit: str | None
    chat_title: str
    telegram_chat_id: int
    author_name: str
    author_user_id: int | None
    language: str | None
    priority: str
    original: str
    translations: tuple[TranslationView, ...]
    # Retention emptied the body (text, media); who wrote when, and where it went, stay.
    purged_at: datetime | None = None
    # A voice note's transcript: status, language, model and Whisper's scores.
    speech: dict[str, Any] | None = None


@dataclass(frozen=True)
class LogQuery:
    """What an auditor asked for (echoed back so a handler can offer the next page)."""

    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


@dataclass(frozen=True)
class LogPage:
    """A page of entries; `next_cursor` is None on the last page."""

    query: LogQuery
    entries: tuple[LogEntry, ...]
    next_cursor: int | None


# --- scope (shared with the CLI export) ---


@dataclass(frozen=True)
class Scope:
    """Which operation, and optionally which unit (its code and chats), a request covers."""

    operation_id: int | None = None
    unit_id: int | None = None
    unit_codes: tuple[str, ...] = ()
    chat_ids: tuple[int, ...] = field(default=())

    def matcher(self) -> Callable[[AuditRecord], bool] | None:
        """A payload predicate for audit events, or None when no unit was asked for."""
        if self.unit_id is None:
            return None
        return unit_matcher(self.unit_codes, self.chat_ids)


async def resolve_scope(uow: UnitOfWork, *, operation: str | None, unit: str | None) -> Scope:
    """Resolve operation and unit names; NotFound/UserInputError say which one is wrong."""
    op_id: int | None = None
    if operation:
        op = await uow.log.operation_named(operation)
        if op is None:
            raise NotFound(
                f"no operation named {operation!r}",
                key="error.unknown_operation",
                name=operation[:64],
            )
        op_id = op.id
    if not unit:
        return Scope(operation_id=op_id)
    found = await uow.log.units_coded(unit, op_id)
    if not found:
        where = f" in operation {operation!r}" if operation else ""
        raise NotFound(f"no unit {unit!r}{where}", key="error.unknown_unit", code=unit[:32])
    if len(found) > 1:
        raise UserInputError(
            f"unit {unit!r} exists in several operations: name the operation too",
            key="audit.ambiguous_unit",
            code=unit[:32],
        )
    row = found[0]
    chats = await uow.log.unit_chat_ids(row.id)
    return Scope(
        operation_id=row.operation_id,
        unit_id=row.id,
        unit_codes=(row.code,),
        chat_ids=tuple(chats),
    )


# --- the service ---


@dataclass(frozen=True)
class _Target:
    unit_id: int | None = None
    chat_id: int | None = None
    label: str | None = None


class AuditAccess:
    """Auditor queries over messages, translations and deliveries (every read audited)."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        *,
        clock: Callable[[], datetime] = utcnow,
        storage: Storage | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.storage = storage or Storage(db, audit)
        self.clock = clock

    async def log(
        self,
        caller: Caller,
        *,
        chat_type: str,
        args: Sequence[str] = (),
        cursor: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> LogPage:
        """`/log [unit|chat] [since] [until]`: messages with originals and translations."""
        request: dict[str, Any] = {"command": "log", "args": [a[:64] for a in args][:4]}
        request["cursor"] = cursor
        async with self._read(caller, chat_type, request) as (uow, person):
            target_text, span = self._parse_log_args(args)
            target = await self._target(uow, person, target_text)
            query = LogQuery(target=target.label, since=span.since, until=span.until)
            page = await self._page(uow, person, query, target, None, cursor, limit)
            request["returned"] = len(page.entries)
            return page

    async def search(
        self,
        caller: Caller,
        *,
        chat_type: str,
        text: str,
        cursor: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> LogPage:
        """`/search TEXT`: messages whose original or any translation contains the text."""
        needle = " ".join(text.split())
        # The search text is what the auditor typed, not message content: it may be audited.
        request: dict[str, Any] = {"command": "search", "text": needle[:MAX_SEARCH]}
        request["cursor"] = cursor
        async with self._read(caller, chat_type, request) as (uow, person):
            if not MIN_SEARCH <= len(needle) <= MAX_SEARCH:
                raise UserInputError(
                    f"search text must be {MIN_SEARCH} to {MAX_SEARCH} characters",
                    key="audit.search_length",
                    min=MIN_SEARCH,
                    max=MAX_SEARCH,
                )
            query = LogQuery(text=needle)
            page = await self._page(uow, person, query, _Target(), needle, cursor, limit)
            request["returned"] = len(page.entries)
            return page

    # --- access and auditing ---

    @asynccontextmanager
    async def _read(
        self, caller: Caller, chat_type: str, request: dict[str, Any]
    ) -> AsyncIterator[tuple[UnitOfWork, Person]]:
        """One audited read: authorise, run, record; a refusal is recorded after the rollback."""
        operation_id: int | None = None

        async def record(exc: DarajaError, reason: str) -> None:
            outcome = "refused" if isinstance(exc, AccessDenied) else "rejected"
            await self.record(
                caller, request, outcome=outcome, reason=reason, operation_id=operation_id
            )

        async with audit_refusals(record), self.storage() as uow:
            person = await self._authorise(uow, caller, chat_type)
            operation_id = person.operation_id
            yield uow, person
            await self._append(uow, caller, request, "ok", operation_id)

    async def _authorise(self, uow: UnitOfWork, caller: Caller, chat_type: str) -> Person:
        person = await uow.people.by_telegram_id(caller.user_id)
        if person is None or person.role != Role.AUDITOR.value:
            raise AccessDenied(
                "auditors only", key="audit.auditors_only", refused="audit.not_auditor"
            )
        if chat_type != "private":
            # Auditors read in private only: nothing of the log is ever shown in a group.
            raise AccessDenied(
                "use this in a private chat", key="audit.private_only", refused="audit.not_private"
            )
        return person

    async def record(
        self,
        caller: Caller,
        request: dict[str, Any],
        *,
        outcome: str,
        reason: str | None,
        operation_id: int | None = None,
    ) -> None:
        """Append the `audit.read` event of one request, in a transaction of its own."""
        payload = dict(request)
        if reason is not None:
            payload["reason"] = reason
        async with self.storage() as uow:
            await self._append(uow, caller, payload, outcome, operation_id)

    async def _append(
        self,
        uow: UnitOfWork,
        caller: Caller,
        payload: dict[str, Any],
        outcome: str,
        operation_id: int | None,
    ) -> None:
        await uow.audit(
            component="audit",
            event_type=READ_EVENT,
            actor=f"tg:{caller.user_id}",
            outcome=outcome,
            operation_id=operation_id,
            payload=payload,
        )

    # --- parsing ---

    def _parse_log_args(self, args: Sequence[str]) -> tuple[str | None, TimeRange]:
        target: str | None = None
        times: list[str] = []
        for arg in args:
            if looks_like_time(arg):
                times.append(arg)
            elif target is None and not times:
                target = arg
            else:
                raise UserInputError(
                    f"unexpected {arg[:40]!r}: use /log [unit|chat] [since] [until]",
                    key="audit.log_usage",
                )
        if len(times) > 2:
            raise UserInputError("at most two times: since and until", key="audit.log_usage")
        since = times[0] if times else None
        until = times[1] if len(times) > 1 else None
        return target, parse_range(since, until, now=self.clock())

    async def _target(self, uow: UnitOfWork, person: Person, text: str | None) -> _Target:
        if text is None:
            return _Target()
        raw = text.strip()
        if raw.lstrip("-").isdigit():
            chat = await uow.log.chat(int(raw), person.operation_id)
            if chat is not None:
                return _Target(chat_id=chat.id, label=chat.title or str(chat.telegram_chat_id))
        units = await uow.log.units_coded(raw, person.operation_id)
        if len(units) == 1:
            return _Target(unit_id=units[0].id, label=units[0].code)
        if len(units) > 1:
            raise UserInputError(
                f"unit {raw!r} exists in several operations", key="audit.ambiguous_unit"
            )
        chats = await uow.log.chats_titled(raw, person.operation_id)
        if len(chats) == 1:
            return _Target(chat_id=chats[0].id, label=chats[0].title)
        raise NotFound(f"no unit or chat {raw[:40]!r}", key="audit.unknown_target", name=raw[:40])

    # --- the query ---

    async def _page(
        self,
        uow: UnitOfWork,
        person: Person,
        query: LogQuery,
        target: _Target,
        needle: str | None,
        cursor: int | None,
        limit: int,
    ) -> LogPage:
        limit = max(1, min(limit, MAX_PAGE))
        rows = await uow.log.rows(
            LogRows(
                operation_id=person.operation_id,
                unit_id=target.unit_id,
                chat_id=target.chat_id,
                since=query.since,
                until=query.until,
                text=needle,
                after=cursor,
                limit=limit + 1,
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        entries = await self.entries(uow, rows)
        more_from = entries[-1].message_id if more and entries else None
        return LogPage(query=query, entries=entries, next_cursor=more_from)

    async def entries(self, uow: UnitOfWork, rows: Sequence[LogRow]) -> tuple[LogEntry, ...]:
        """The log entries of rows read by `uow.log.rows()`, each with its translations
        and their deliveries (the web console builds its entries through it too)."""
        ids = [r[0].id for r in rows]
        translations = await self._translations(uow, ids)
        return tuple(
            LogEntry(
                message_id=m.id,
                at=m.created_at,
                edited_at=m.edited_at,
                revision=m.revision,
                operation=op.name,
                unit=unit.code if unit else None,
                chat_title=chat.title,
                telegram_chat_id=chat.telegram_chat_id,
                author_name=m.author_name,
                author_user_id=m.author_user_id,
                language=m.source_language,
                priority=m.priority,
                original=m.text,
                translations=translations.get((m.id, m.revision), ()),
                purged_at=m.purged_at,
                speech=_speech(m),
            )
            for m, chat, op, unit in rows
        )

    async def _translations(
        self, uow: UnitOfWork, message_ids: list[int]
    ) -> dict[tuple[int, int], tuple[TranslationView, ...]]:
        if not message_ids:
            return {}
        trows, drows = await uow.log.translations(message_ids)
        sent: dict[tuple[int, int, str], list[DeliveryView]] = {}
        for d, chat, unit in drows:
            view = DeliveryView(
                chat_title=chat.title,
                telegram_chat_id=chat.telegram_chat_id,
                unit=unit.code if unit else None,
                action=d.action,
                state=d.state,
                attempts=d.attempts,
                sent_at=d.sent_at,
            )
            # A mixed group's delivery names several languages ("ht,fr").
            for lang in d.target_language.split(","):
                sent.setdefault((d.message_id, d.revision, lang), []).append(view)
        out: dict[tuple[int, int], list[TranslationView]] = {}
        for t in trows:
            out.setdefault((t.message_id, t.revision), []).append(
                TranslationView(
                    language=t.target_language,
                    text=t.text,
                    route=t.route,
                    models=tuple(str(m) for m in t.models or ()),
                    score=t.score,
                    flags=tuple(str(f) for f in t.flags or ()),
                    deliveries=tuple(sent.get((t.message_id, t.revision, t.target_language), ())),
                    purged_at=t.purged_at,
                )
            )
        return {k: tuple(v) for k, v in out.items()}


def _speech(message: Message) -> dict[str, Any] | None:
    """The transcript's scores, for a message that is a voice note's transcript."""
    info = (message.media or {}).get("transcript") if message.kind == "transcript" else None
    return info if isinstance(info, dict) else None
