"""The storage seam's errors: which unique constraint a refused write hit.

A replayed update or a race between two copies of it shows as a unique-constraint violation.
Services must tell that (expected, nothing to do) from every other integrity failure (a bug or
a broken database, which the sender must hear about). `duplicate_of` names the constraint from
the driver's error on both backends, so a service matches on one named constraint, never on
"any IntegrityError".

PostgreSQL names the constraints the migrations create `<table>_<columns>_key`; SQLite keeps
them unnamed and reports the columns instead. `UNIQUE` maps both spellings to one name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NoReturn

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

# A message of a chat, once (a replayed update).
MESSAGE_SOURCE = "messages_chat_id_telegram_message_id_key"
# A FLASH per source message (a replayed private `/flash`).
FLASH_SOURCE = "flashes_source_chat_id_source_message_id_key"
# One FLASH row per recorded message.
FLASH_MESSAGE = "flashes_message_id_key"
# A unit acknowledges a FLASH once.
FLASH_ACK = "flash_acks_flash_id_unit_id_key"
# One translation of a message revision per language.
TRANSLATION = "translations_message_id_revision_target_language_key"
# One copy of a message revision per target chat and action.
DELIVERY = "deliveries_message_id_revision_target_chat_id_action_key"
# The message map: one row per Telegram message the bot posted.
COPY = "copies_telegram_chat_id_telegram_message_id_key"
# A SITREP wizard in progress, one per person and chat.
REPORT_DRAFT = "report_drafts_telegram_chat_id_telegram_user_id_key"

# Constraint name -> (table, columns), as SQLite reports a violation.
UNIQUE: Mapping[str, tuple[str, tuple[str, ...]]] = {
    MESSAGE_SOURCE: ("messages", ("chat_id", "telegram_message_id")),
    FLASH_SOURCE: ("flashes", ("source_chat_id", "source_message_id")),
    FLASH_MESSAGE: ("flashes", ("message_id",)),
    FLASH_ACK: ("flash_acks", ("flash_id", "unit_id")),
    TRANSLATION: ("translations", ("message_id", "revision", "target_language")),
    DELIVERY: ("deliveries", ("message_id", "revision", "target_chat_id", "action")),
    COPY: ("copies", ("telegram_chat_id", "telegram_message_id")),
    REPORT_DRAFT: ("report_drafts", ("telegram_chat_id", "telegram_user_id")),
}
_BY_COLUMNS = {
    ", ".join(f"{table}.{c}" for c in columns): name for name, (table, columns) in UNIQUE.items()
}
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


# Any other write the database refused (a foreign key, a NOT NULL, a constraint not named
# here): services catch it by this name and need not import SQLAlchemy.
RefusedWrite = IntegrityError
# Any failure of the database layer (cannot connect, refused statement, bad URL): what the CLI
# catches to turn into one line, without importing SQLAlchemy itself.
DatabaseError = SQLAlchemyError


class Duplicate(Exception):
    """A write hit the named unique constraint: the row is already there."""

    def __init__(self, constraint: str) -> None:
        super().__init__(f"duplicate on {constraint}")
        self.constraint = constraint


def duplicate_of(exc: IntegrityError) -> Duplicate | None:
    """The `Duplicate` an integrity error means, or None when it is anything else (a foreign
    key, a NOT NULL, a constraint this module does not name)."""
    orig = exc.orig
    # asyncpg, behind SQLAlchemy's adapter: the driver's exception carries the name.
    cause = getattr(orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None) or getattr(orig, "constraint_name", None)
    if getattr(cause, "sqlstate", None) == "23505" and name in UNIQUE:
        return Duplicate(str(name))
    match = _SQLITE_UNIQUE.search(str(orig).strip())
    if match is not None and match.group(1) in _BY_COLUMNS:
        return Duplicate(_BY_COLUMNS[match.group(1)])
    return None


def raise_mapped(exc: IntegrityError) -> NoReturn:
    """Raise the `Duplicate` an integrity error means, else the integrity error itself."""
    duplicate = duplicate_of(exc)
    if duplicate is not None:
        raise duplicate from exc
    raise exc


# SQLite's own words -> what an operator should check.
_SQLITE_REASONS = (
    ("readonly database", "the database file is read-only: give the bot's user write access"),
    ("unable to open database file", "cannot open the database file (check the path)"),
    ("file is not a database", "the database file is not a SQLite database"),
    ("disk i/o error", "the disk refused a write (disk full or failing?)"),
    ("database or disk is full", "the disk is full"),
    ("database is locked", "another process holds the database's lock; try again"),
)


def refusal_line(exc: BaseException) -> str | None:
    """One line for an operator saying why the database layer refused (never the URL), or
    None if `exc` is not such a refusal (`os_cause` gives an operating system error behind
    one, for the caller to explain)."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return "DARAJA_DATABASE_URL: not a database URL Daraja can use"
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    text = first_line(orig) if orig is not None else ""
    if type(orig).__module__.startswith("sqlite3") or "sqlite" in type(orig).__module__:
        lowered = text.lower()
        for words, line in _SQLITE_REASONS:
            if words in lowered:
                return line
        return f"SQLite refused: {text}"
    return f"the database refused: {text}"


def os_cause(exc: BaseException) -> OSError | None:
    """The operating system's error behind a database refusal (a server that is down)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(exc, SQLAlchemyError) and isinstance(orig, OSError) else None


def first_line(exc: BaseException) -> str:
    """An exception's first line, without the asyncpg adapter's class prefix."""
    # SQLAlchemy's asyncpg adapter prefixes "<class 'asyncpg.exceptions.X'>: ".
    text = re.sub(r"^<class '[\w.]+'>:\s*", "", str(exc).strip())
    return text.splitlines()[0] if text else type(exc).__name__
