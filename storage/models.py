"""ORM models: the tables every feature shares.

Migrations in `storage/migrations/versions/` create these tables; the ORM never creates them
itself. Telegram ids are BigInteger (chat ids reach -100xxxxxxxxxx). Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time in UTC (aware)."""
    return datetime.now(UTC)


def split_languages(languages: str) -> list[str]:
    """A chat's stored languages (`ht,en`) as a list, first one primary."""
    return [p for p in languages.split(",") if p]


def naive_utc(value: datetime | None) -> datetime | None:
    """A time as a UTC column stores it: naive UTC (statements that bind arrays of times,
    where `UTCDateTime` does not apply, convert with this)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None)


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime stored as naive UTC and always read back as aware UTC (SQLite drops zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base for all Daraja tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Operation(Base):
    """A joint operation: the unit of linking, reporting and auditing."""

    __tablename__ = "operations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    default_language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="America/Port-au-Prince")
    report_interval_min: Mapped[int] = mapped_column(Integer, default=60)
    glossary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Unit(Base):
    """A unit of one side (PNH or MSS) in an operation, with its home language."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("operation_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    side: Mapped[str] = mapped_column(String(8))  # PNH | MSS
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A retired unit takes no new codes and its chats are cut off; its rows stay for the record.
    retired_at: Mapped[datetime | None]
    retired_by: Mapped[str | None] = mapped_column(String(64))


class Chat(Base):
    """A Telegram chat enrolled into an operation (bound to a unit, or the command chat)."""

    __tablename__ = "chats"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id", ondelete="RESTRICT"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(255), default="")
    chat_type: Mapped[str] = mapped_column(String(16), default="group")
    # Comma-separated languages; more than one makes a mixed group.
    languages: Mapped[str] = mapped_column(String(32))
    is_command: Mapped[bool] = mapped_column(Boolean, default=False)
    back_translate: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    enrolled_by: Mapped[int | None] = mapped_column(BigInteger)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set (with `active` false) when an admin cuts the chat off; a new code may enroll it again.
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))

    @property
    def language_list(self) -> list[str]:
        """The chat's languages, first one primary."""
        return split_languages(self.languages)


class Person(Base):
    """A person known to the bot, with a role and a reading language."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    rank: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(16))  # officer | commander | auditor | admin
    language: Mapped[str | None] = mapped_column(String(8))
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # A revoked person's messages are refused and never relayed, whatever the role says.
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class EnrollmentCode(Base):
    """A one-time, expiring code; only its SHA-256 is stored."""

    __tablename__ = "enrollment_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # chat | person
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    role: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(32))
    is_command: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class AttemptCounter(Base):
    """Failed enrollment-code attempts of one person or chat in the current window, and its
    lockout (kept in the database so a restart does not lift it)."""

    __tablename__ = "attempt_counters"
    __table_args__ = (UniqueConstraint("scope", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))  # user | chat
    subject: Mapped[int] = mapped_column(BigInteger)  # Telegram user or chat id
    window_start: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)  # each one doubles the next
    locked_until: Mapped[datetime | None]
    notified_at: Mapped[datetime | None]  # last "locked" reply (one a minute at most)


class RefusalCount(Base):
    """Refused attempts of one actor in one chat, for one reason and command, counted since
    the last audit event that covered them (refusals are audited in aggregate)."""

    __tablename__ = "refusal_counts"
    __table_args__ = (
        UniqueConstraint("actor", "chat_id", "reason", "command"),
        Index("ix_refusal_counts_window", "window_start"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[int] = mapped_column(BigInteger)  # 0: no chat
    reason: Mapped[str] = mapped_column(String(48))
    command: Mapped[str] = mapped_column(String(32))  # "": not a command
    window_start: Mapped[datetime]
    pending: Mapped[int] = mapped_column(Integer, default=0)  # not yet in an audit event
    first_at: Mapped[datetime | None]
    last_at: Mapped[datetime | None]


class RefusedChat(Base):
    """A chat that was told it is not enrolled: it is told once, also across restarts."""

    __tablename__ = "refused_chats"
    telegram_chat_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False
    )
    told_at: Mapped[datetime]


class InboxUpdate(Base):
    """A raw Telegram update, committed before its offset is confirmed (durable inbox)."""

    __tablename__ = "inbox"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(12), default="new")  # new | done | failed
    error: Mapped[str | None] = mapped_column(String(255))
    __table_args__ = (
        Index("ix_inbox_state", "state", "update_id"),
        Index("ix_inbox_processed", "processed_at"),
    )


class Message(Base):
    """An inbound message of an enrolled chat, as written (the original)."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("chat_id", "telegram_message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"))
    telegram_message_id: Mapped[int] = mapped_column(BigInteger)
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    author_user_id: Mapped[int | None] = mapped_column(BigInteger)
    author_name: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(16), default="text")
    text: Mapped[str] = mapped_column(Text, default="")
    entities: Mapped[list[Any] | None] = mapped_column(JSON)
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_language: Mapped[str | None] = mapped_column(String(8))
    language_decided_by: Mapped[str | None] = mapped_column(String(32))
    reply_to_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # normal | flash
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None]
    # Set when retention removed the body (text, entities, media): the row itself stays.
    purged_at: Mapped[datetime | None]


class TranslationRow(Base):
    """One translation of a message (revision) into one target language."""

    __tablename__ = "translations"
    __table_args__ = (UniqueConstraint("message_id", "revision", "target_language"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    target_language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(String(32))  # same | direct | multilingual | pivot | ...
    models: Mapped[list[Any]] = mapped_column(JSON, default=list)
    score: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[datetime | None]  # set when retention removed the text


class Delivery(Base):
    """The outbox: one row per copy to send (or edit) in one target chat."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "revision", "target_chat_id", "action"),
        Index("ix_deliveries_pending", "state", "target_chat_id", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    target_chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"))
    # send | edit | annotate | reannotate | backcheck | rebackcheck
    action: Mapped[str] = mapped_column(String(16), default="send")
    target_language: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    # pending | sending | sent | ambiguous | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    telegram_message_ids: Mapped[list[Any] | None] = mapped_column(JSON)
    not_before: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    # The copy may already have reached Telegram once (a send in flight at a crash or timeout).
    ambiguous: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class AuditEvent(Base):
    """An append-only, hash-chained audit event. Never updated or deleted by the app."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    ts: Mapped[datetime]
    component: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(48), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row: the chain head, locked by every append so appends serialise."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class Copy(Base):
    """A Telegram message the bot posted for a delivery (the message map for replies/edits)."""

    __tablename__ = "copies"
    __table_args__ = (
        UniqueConstraint("telegram_chat_id", "telegram_message_id"),
        Index("ix_copies_delivery", "delivery_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    target_chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"))
    telegram_chat_id: Mapped[int] = mapped_column(BigInteger)
    telegram_message_id: Mapped[int] = mapped_column(BigInteger)
    part: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None while the part carries the message; `deleted` or `marked` once an edit left it
    # surplus (kept: a reply to a marked part still finds its message).
    retired: Mapped[str | None] = mapped_column(String(16), default=None)


class ConsoleLink(Base):
    """A one-time web console login link, bound to a person and role; only its SHA-256 kept."""

    __tablename__ = "console_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A web console session opened by one link; only its cookie token's SHA-256 kept."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("console_links.id"))
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class AuditPurgeGate(Base):
    """One row: the seq at or below which the guard trigger lets a retention purge delete.

    Zero except inside `storage.audit_retention.purge_before`'s transaction (migration 0002).
    """

    __tablename__ = "audit_purge_gate"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cut_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class QueuedNotice(Base):
    """The notice outbox: a message the bot writes on its own (a FLASH reminder or escalation,
    a staleness alert, the "acknowledged" edit of a FLASH copy), posted by the outbox worker."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_pending", "state", "telegram_chat_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int | None] = mapped_column(Integer)
    telegram_chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(8), default="send")  # send | edit
    text: Mapped[str] = mapped_column(Text)
    # send: the message to reply to; edit: the message to edit.
    target_message_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(255))
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class ReportDraft(Base):
    """A `/report` wizard in progress: the answers so far, one per person and chat."""

    __tablename__ = "report_drafts"
    __table_args__ = (UniqueConstraint("telegram_chat_id", "telegram_user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_chat_id: Mapped[int] = mapped_column(BigInteger)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
