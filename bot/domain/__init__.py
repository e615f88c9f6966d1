"""Domain vocabulary shared by services and handlers (standard library only)."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

TelegramUserId = NewType("TelegramUserId", int)
TelegramChatId = NewType("TelegramChatId", int)

LANGUAGES: tuple[str, ...] = ("ht", "fr", "en", "sw")


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
