"""Small fakes shared by service tests: a clock moved by hand and a tagging translator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from translation.types import LanguageGuess, Route, Translation

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    """A UTC clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeTranslator:
    """Detects by a `xx:` prefix (else the chat's language); translates by tagging `[xx]`;
    records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], str]] = []

    def detect(
        self, text: str, *, chat_languages: Sequence[str], author_language: str | None
    ) -> LanguageGuess:
        tag = text.split(":", 1)[0]
        if tag in ("ht", "fr", "en", "sw"):
            return LanguageGuess(tag, "classifier", 0.9)
        return LanguageGuess(chat_languages[0], "prior:chat", 0.5)

    async def translate_many(
        self, text: str, targets: Sequence[str], *, source: str, glossary: Any = None
    ) -> list[Translation]:
        self.calls.append((text, tuple(targets), source))
        return [
            Translation(
                text=f"[{t}] {text}",
                source=source,
                target=t,
                source_decided_by="given",
                route=Route.DIRECT,
                models=(f"{source}-{t}",),
                score=0.9,
            )
            for t in targets
        ]
