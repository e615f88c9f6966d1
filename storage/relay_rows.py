"""The relay's rows: what a message's plan reads, and how a message, its translations and its
outbox rows are recorded (one code path for officers' messages, SITREPs and FLASH orders).

Prebuilt table statements and multi-row inserts, not ORM queries: these run for every message
of a burst, and building and loading ORM rows cost ten times the queries themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.audit import AuditChain, PendingEvent
from storage.models import (
    Chat,
    Delivery,
    Message,
    Operation,
    Person,
    TranslationRow,
    Unit,
    naive_utc,
    split_languages,
)


@dataclass(frozen=True)
class Target:
    """A target chat as recording needs it: its row id and languages (first one primary)."""

    id: int
    languages: str

    @property
    def language_list(self) -> list[str]:
        """The chat's languages, first one primary."""
        return split_languages(self.languages)


@dataclass(frozen=True)
class TranslationRecord:
    """One translation as it is stored (the engine's `Translation` reduced to its columns)."""

    text: str
    route: str
    models: list[str]
    score: float | None
    flags: list[str]


class PlanChat(NamedTuple):
    """The source chat as the relay's plan needs it."""

    id: int
    active: bool
    operation_id: int
    languages: str
    back_translate: bool | None
    glossary: Any
    unit_code: str | None
    unit_side: str | None


class Recorded(NamedTuple):
    """A message already recorded: its row id and revision."""

    id: int
    revision: int


@dataclass(frozen=True)
class PlanRows:
    """Everything a message's plan reads, from one statement: the source chat (None if not
    enrolled), the message already recorded for it, the author's language and the operation's
    active chats in enrollment order."""

    chat: PlanChat | None
    existing: Recorded | None
    author_language: str | None
    linked: list[Target]


class RelayRepo:
    """The relay's reads and writes, in the caller's transaction."""

    def __init__(self, session: AsyncSession, chain: AuditChain) -> None:
        self.session = session
        self.chain = chain

    async def plan(
        self, telegram_chat_id: int, telegram_message_id: int, author_id: int | None
    ) -> PlanRows:
        """The plan's reads in one statement (`chat`, `recorded`, `author_language` and
        `linked` together: one round trip on PostgreSQL instead of four)."""
        rows = (
            await self.session.execute(
                _PLAN_ALL,
                {"tg": telegram_chat_id, "message": telegram_message_id, "user": author_id},
            )
        ).all()
        if not rows:
            return PlanRows(None, None, None, [])
        first = rows[0]
        existing = None if first.existing_id is None else Recorded(*first[8:10])
        linked = [Target(r.linked_id, r.linked_languages) for r in rows if r.linked_id is not None]
        return PlanRows(PlanChat(*first[:8]), existing, first.author_language, linked)

    async def chat(self, telegram_chat_id: int) -> PlanChat | None:
        """The enrolled chat (active or not) with its operation's glossary and its unit."""
        row = (await self.session.execute(_PLAN_CHAT, {"tg": telegram_chat_id})).one_or_none()
        return None if row is None else PlanChat(*row)

    async def recorded(self, chat_id: int, telegram_message_id: int) -> Recorded | None:
        """The message a chat's Telegram message was recorded as, if it was."""
        row = (
            await self.session.execute(
                _PLAN_EXISTING, {"chat": chat_id, "message": telegram_message_id}
            )
        ).one_or_none()
        return None if row is None else Recorded(*row)

    async def author_language(self, telegram_user_id: int) -> str | None:
        """An enrolled person's language (None if unknown or unset)."""
        result = await self.session.execute(_PLAN_AUTHOR, {"user": telegram_user_id})
        return cast(str | None, result.scalar_one_or_none())

    async def linked(self, operation_id: int) -> list[Target]:
        """The operation's active chats, in enrollment order."""
        rows = await self.session.execute(_PLAN_LINKED, {"op": operation_id})
        return [Target(row.id, row.languages) for row in rows]

    async def sent_to(self, message_id: int) -> set[int]:
        """The chats a message's copies went to (what an edit must reach)."""
        return set((await self.session.execute(_PLAN_SENT_TO, {"message": message_id})).scalars())

    async def add_message(self, values: Mapping[str, Any]) -> int:
        """Insert a message row; its id. A replayed message hits MESSAGE_SOURCE."""
        result = await self.session.execute(_INSERT_MESSAGE, dict(values))
        return int(result.scalar_one())

    async def edit_message(self, message_id: int, **values: Any) -> Message:
        """Apply an edit's new columns to a recorded message (flushed)."""
        message = await self.session.get(Message, message_id)
        assert message is not None
        for name, value in values.items():
            setattr(message, name, value)
        await self.session.flush()
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
        """Record a message's translations (audited) and one outbox row per target chat (then
        the `extra` rows, e.g. an in-place annotation); how many outbox rows."""
        return cast(
            int,
            await self.session.run_sync(
                lambda s: record_copies_sync(
                    s,
                    self.chain,
                    message=message,
                    translations=translations,
                    targets=targets,
                    now=now,
                    action=action,
                    extra=extra,
                    lead_events=lead_events,
                )
            ),
        )


def record_copies_sync(
    s: Session,
    audit: AuditChain,
    *,
    message: Message,
    translations: Mapping[str, TranslationRecord],
    targets: Sequence[Chat | Target],
    now: datetime,
    action: str = "send",
    extra: Sequence[Delivery] = (),
    lead_events: Sequence[PendingEvent] = (),
) -> int:
    """`RelayRepo.record_copies` on a synchronous session. `lead_events` are audited before the
    translations (the message's own event)."""
    s.flush()  # the message row (and anything else pending) first
    translation_rows: list[dict[str, Any]] = []
    events = list(lead_events)
    for lang, tr in translations.items():
        translation_rows.append(
            {
                "message_id": message.id,
                "revision": message.revision,
                "target_language": lang,
                "text": tr.text,
                "route": tr.route,
                "models": tr.models,
                "score": tr.score,
                "flags": tr.flags,
                "created_at": now,
            }
        )
        events.append(
            PendingEvent(
                component="translation",
                event_type="translation.made",
                actor="daraja",
                operation_id=message.operation_id,
                ts=now,
                payload={
                    "message_id": message.id,
                    "revision": message.revision,
                    "source": message.source_language,
                    "target": lang,
                    "text": tr.text,
                    "route": tr.route,
                    "models": tr.models,
                    "score": tr.score,
                    "flags": tr.flags,
                },
            )
        )
    # Outbox rows are inserted in order: their ids are the per-chat delivery order.
    deliveries = [
        {
            "message_id": message.id,
            "revision": message.revision,
            "target_chat_id": target.id,
            "action": action,
            "target_language": target.languages,
            "state": "pending",
            "attempts": 0,
            "created_at": now,
        }
        for target in targets
    ]
    deliveries.extend(
        {
            "message_id": row.message_id,
            "revision": row.revision,
            "target_chat_id": row.target_chat_id,
            "action": row.action,
            "target_language": row.target_language,
            "state": row.state or "pending",
            "attempts": row.attempts or 0,
            "created_at": row.created_at or now,
        }
        for row in extra
    )
    head: tuple[int, str] | None = None
    if deliveries and events and s.get_bind().dialect.name == "postgresql":
        # The translations, the outbox rows and the audit head's lock in one statement (two
        # round trips less per message; the lock is still taken in the transaction's last
        # statement but the append).
        columns: dict[str, list[Any]] = {c: [d[c] for d in deliveries] for c in _DELIVERY_COLUMNS}
        columns["created_at"] = [naive_utc(t) for t in columns["created_at"]]
        for name in _TRANSLATION_COLUMNS:
            values = [row[name] for row in translation_rows]
            if name in ("models", "flags"):
                values = [json.dumps(v) for v in values]
            elif name == "created_at":
                values = [naive_utc(v) for v in values]
            columns[f"t_{name}"] = values
        seq, digest = s.execute(_PG_RECORD_THEN_HEAD, columns).one()
        head = (int(seq), str(digest))
    else:
        if translation_rows:
            s.execute(_INSERT_TRANSLATIONS, translation_rows)
        if deliveries:
            s.execute(_INSERT_DELIVERIES, deliveries)
    audit.append_many_sync(s, events, head=head)
    return len(targets) + len(extra)


_DELIVERY_COLUMNS = (
    "message_id",
    "revision",
    "target_chat_id",
    "action",
    "target_language",
    "state",
    "attempts",
    "created_at",
)
_TRANSLATION_COLUMNS = (
    "message_id",
    "revision",
    "target_language",
    "text",
    "route",
    "models",
    "score",
    "flags",
    "created_at",
)
# PostgreSQL: the translations and the outbox rows as arrays (the outbox rows inserted in the
# order given: their ids are each chat's delivery order), then the audit head read and locked
# as `storage.audit` does (READ COMMITTED: a writer holding it is waited for, then its
# committed head is read), last.
_PG_RECORD_THEN_HEAD = text(
    """
    WITH translated AS (
        INSERT INTO translations
            (message_id, revision, target_language, text, route, models, score, flags,
             created_at)
        SELECT message_id, revision, target_language, text, route, CAST(models AS JSON),
            score, CAST(flags AS JSON), created_at
        FROM unnest(
            CAST(:t_message_id AS INTEGER[]), CAST(:t_revision AS INTEGER[]),
            CAST(:t_target_language AS VARCHAR[]), CAST(:t_text AS TEXT[]),
            CAST(:t_route AS VARCHAR[]), CAST(:t_models AS TEXT[]),
            CAST(:t_score AS DOUBLE PRECISION[]), CAST(:t_flags AS TEXT[]),
            CAST(:t_created_at AS TIMESTAMP[])
        ) AS v (message_id, revision, target_language, text, route, models, score, flags,
            created_at)
    ),
    queued AS (
        INSERT INTO deliveries
            (message_id, revision, target_chat_id, action, target_language, state, attempts,
             ambiguous, created_at)
        SELECT message_id, revision, target_chat_id, action, target_language, state, attempts,
            false, created_at
        FROM unnest(
            CAST(:message_id AS INTEGER[]), CAST(:revision AS INTEGER[]),
            CAST(:target_chat_id AS INTEGER[]), CAST(:action AS VARCHAR[]),
            CAST(:target_language AS VARCHAR[]), CAST(:state AS VARCHAR[]),
            CAST(:attempts AS INTEGER[]), CAST(:created_at AS TIMESTAMP[])
        ) WITH ORDINALITY AS v (message_id, revision, target_chat_id, action,
            target_language, state, attempts, created_at, n)
        ORDER BY n
    )
    SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE
    """
).bindparams(
    bindparam("message_id", type_=ARRAY(Integer)),
    bindparam("revision", type_=ARRAY(Integer)),
    bindparam("target_chat_id", type_=ARRAY(Integer)),
    bindparam("action", type_=ARRAY(String)),
    bindparam("target_language", type_=ARRAY(String)),
    bindparam("state", type_=ARRAY(String)),
    bindparam("attempts", type_=ARRAY(Integer)),
    bindparam("created_at", type_=ARRAY(DateTime())),
    bindparam("t_message_id", type_=ARRAY(Integer)),
    bindparam("t_revision", type_=ARRAY(Integer)),
    bindparam("t_target_language", type_=ARRAY(String)),
    bindparam("t_text", type_=ARRAY(Text)),
    bindparam("t_route", type_=ARRAY(String)),
    bindparam("t_models", type_=ARRAY(Text)),
    bindparam("t_score", type_=ARRAY(Float)),
    bindparam("t_flags", type_=ARRAY(Text)),
    bindparam("t_created_at", type_=ARRAY(DateTime())),
)
_CHATS = cast(Table, Chat.__table__)
_UNITS = cast(Table, Unit.__table__)
_INSERT_TRANSLATIONS = insert(cast(Table, TranslationRow.__table__))
_INSERT_DELIVERIES = insert(cast(Table, Delivery.__table__))
_PLAN_CHAT = (
    select(
        _CHATS.c.id,
        _CHATS.c.active,
        _CHATS.c.operation_id,
        _CHATS.c.languages,
        _CHATS.c.back_translate,
        Operation.__table__.c.glossary,
        _UNITS.c.code.label("unit_code"),
        _UNITS.c.side.label("unit_side"),
    )
    .select_from(
        _CHATS.join(
            Operation.__table__, Operation.__table__.c.id == _CHATS.c.operation_id
        ).outerjoin(_UNITS, _UNITS.c.id == _CHATS.c.unit_id)
    )
    .where(_CHATS.c.telegram_chat_id == bindparam("tg"))
)
_INSERT_MESSAGE = insert(cast(Table, Message.__table__)).returning(Message.__table__.c.id)
_PLAN_EXISTING = select(Message.__table__.c.id, Message.__table__.c.revision).where(
    Message.__table__.c.chat_id == bindparam("chat"),
    Message.__table__.c.telegram_message_id == bindparam("message"),
)
_PLAN_AUTHOR = select(Person.__table__.c.language).where(
    Person.__table__.c.telegram_user_id == bindparam("user")
)
_PLAN_LINKED = (
    select(_CHATS.c.id, _CHATS.c.languages)
    .where(_CHATS.c.operation_id == bindparam("op"), _CHATS.c.active.is_(True))
    .order_by(_CHATS.c.id)
)
_PLAN_SENT_TO = (
    select(Delivery.__table__.c.target_chat_id)
    .where(
        Delivery.__table__.c.message_id == bindparam("message"),
        Delivery.__table__.c.action == "send",
    )
    .distinct()
)
_MESSAGES = cast(Table, Message.__table__)
_PEOPLE = cast(Table, Person.__table__)
_LINKED = _CHATS.alias("linked")
# One row per active chat of the source chat's operation (in enrollment order), each carrying
# the source chat, the message recorded for it (at most one: MESSAGE_SOURCE) and the author's
# language (at most one person per Telegram user).
_PLAN_ALL = (
    select(
        *_PLAN_CHAT.selected_columns,
        _MESSAGES.c.id.label("existing_id"),
        _MESSAGES.c.revision.label("existing_revision"),
        _PEOPLE.c.language.label("author_language"),
        _LINKED.c.id.label("linked_id"),
        _LINKED.c.languages.label("linked_languages"),
    )
    .select_from(
        _CHATS.join(Operation.__table__, Operation.__table__.c.id == _CHATS.c.operation_id)
        .outerjoin(_UNITS, _UNITS.c.id == _CHATS.c.unit_id)
        .outerjoin(
            _MESSAGES,
            (_MESSAGES.c.chat_id == _CHATS.c.id)
            & (_MESSAGES.c.telegram_message_id == bindparam("message")),
        )
        .outerjoin(_PEOPLE, _PEOPLE.c.telegram_user_id == bindparam("user"))
        .outerjoin(
            _LINKED,
            (_LINKED.c.operation_id == _CHATS.c.operation_id) & _LINKED.c.active.is_(True),
        )
    )
    .where(_CHATS.c.telegram_chat_id == bindparam("tg"))
    .order_by(_LINKED.c.id)
)
