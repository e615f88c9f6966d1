"""Domain vocabulary shared by services and handlers (standard library only).

The enums are `StrEnum`s: each member *is* its string value, so the values stored in the
database, written to the audit log and compared in code stay exactly the strings they were.
"""

from __future__ import annotations

import html
from enum import StrEnum
from typing import Literal, NewType

TelegramUserId = NewType("TelegramUserId", int)
TelegramChatId = NewType("TelegramChatId", int)


class Language(StrEnum):
    """The languages of the mission, in the order they are listed everywhere."""

    HT = "ht"  # Haitian Creole
    FR = "fr"
    EN = "en"
    SW = "sw"


# The same codes as a type for settings (pydantic validates a Literal as plain text).
LanguageCode = Literal["ht", "fr", "en", "sw"]
LANGUAGES: tuple[str, ...] = tuple(language.value for language in Language)


class Role(StrEnum):
    """What a person may do; each role includes nothing of another except admin."""

    OFFICER = "officer"
    COMMANDER = "commander"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Side(StrEnum):
    """Which force a unit belongs to."""

    PNH = "PNH"
    MSS = "MSS"


SIDES: tuple[str, ...] = tuple(side.value for side in Side)


class MessageKind(StrEnum):
    """What a relayed message is (`messages.kind`)."""

    TEXT = "text"
    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    VOICE = "voice"
    AUDIO = "audio"
    ANIMATION = "animation"
    LOCATION = "location"
    VENUE = "venue"
    POLL = "poll"
    SITREP = "sitrep"
    TRANSCRIPT = "transcript"  # the bot's transcript of a voice note, relayed as a reply


class CodeKind(StrEnum):
    """Whom an enrollment code enrolls (`enrollment_codes.kind`)."""

    CHAT = "chat"  # a unit's group
    PERSON = "person"  # one person, in a private chat


def parse_languages(value: str) -> list[str]:
    """Parse `ht` or `ht+en` / `ht,en` into a list of supported languages (raises ValueError)."""
    parts = [p.strip().lower() for p in value.replace("+", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("no language given")
    bad = [p for p in parts if p not in LANGUAGES]
    if bad:
        raise ValueError(f"unsupported language {bad[0]!r} (use one of {', '.join(LANGUAGES)})")
    if len(set(parts)) != len(parts):
        raise ValueError("a language is listed twice")
    return parts


def escape_html(value: object) -> str:
    """`value` as text safe inside Telegram HTML: `&`, `<` and `>` escaped, quotes left alone
    (Telegram's parser treats only those three specially outside attributes)."""
    return html.escape(str(value), quote=False)
