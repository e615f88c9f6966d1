"""The translation port the relay uses, and a fallback when no engine or model is available.

Services depend on this protocol, not on `translation.engine` directly, so unit tests can use a
small recording fake and the bot keeps relaying originals (flagged) when a model is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from translation.types import Flag, LanguageGuess, Route, Translation

log = logging.getLogger(__name__)


class Translator(Protocol):
    """What the relay needs from a translation engine."""

    def detect(
        self, text: str, *, chat_languages: Sequence[str], author_language: str | None
    ) -> LanguageGuess:
        """Guess the language of `text` with the chat's and author's languages as priors."""
        ...

    async def translate_many(
        self,
        text: str,
        targets: Sequence[str],
        *,
        source: str,
        glossary: Any = None,
    ) -> list[Translation]:
        """Translate `text` from `source` into each target (one result per target, in order)."""
        ...


def untranslated(text: str, source: str, target: str, *, missing: bool) -> Translation:
    """The original passed on: same language, or (flagged) no model could serve the pair."""
    return Translation(
        text=text,
        source=source,
        target=target,
        source_decided_by="given",
        route=Route.NONE if missing else Route.SAME,
        flags=(Flag.NO_MODEL,) if missing else (),
    )


class EngineTranslator:
    """Adapter from `translation.engine.Engine` to the relay's port: a failing pair degrades to
    the original with a `no_model` flag instead of failing the whole message."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._glossaries: dict[str, Any] = {}

    def detect(
        self, text: str, *, chat_languages: Sequence[str], author_language: str | None
    ) -> LanguageGuess:
        """Language identification with priors (offline)."""
        from translation.langid import detect

        return detect(text, chat_languages=tuple(chat_languages), author_language=author_language)

    def glossary(self, operation_terms: Mapping[str, Any] | None) -> Any:
        """Place names and acronyms kept intact: the built-in list, the terminology table's
        fixed renderings, and the operation's own terms (cached per distinct glossary)."""
        import json

        key = json.dumps(operation_terms or {}, sort_keys=True)
        if key not in self._glossaries:
            from bot.i18n.terminology import glossary_mapping
            from translation.glossary import default_glossary, merged

            base = merged(default_glossary(), glossary_mapping())
            self._glossaries[key] = merged(base, dict(operation_terms or {}))
        return self._glossaries[key]

    async def translate_many(
        self, text: str, targets: Sequence[str], *, source: str, glossary: Any = None
    ) -> list[Translation]:
        """Translate into every target concurrently; each failure is contained to its target."""
        from translation.errors import TranslationError

        results = await self.engine.translate_many(
            text,
            list(targets),
            source=source,
            glossary=self.glossary(glossary),
            return_exceptions=True,
        )
        out: list[Translation] = []
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, TranslationError):
                log.warning("no translation %s->%s: %s", source, target, type(result).__name__)
                out.append(untranslated(text, source, target, missing=target != source))
            else:
                out.append(result)
        return out


class NoModelsTranslator:
    """Used when no translation engine is available: originals pass on, flagged `no_model`."""

    def detect(
        self, text: str, *, chat_languages: Sequence[str], author_language: str | None
    ) -> LanguageGuess:
        """Without models, trust the chat's language (then the author's)."""
        if chat_languages:
            return LanguageGuess(chat_languages[0], "prior:chat", 0.5)
        return LanguageGuess(author_language or "en", "prior:author", 0.3)

    async def translate_many(
        self, text: str, targets: Sequence[str], *, source: str, glossary: Any = None
    ) -> list[Translation]:
        """The original for every target, flagged where the language differs."""
        return [untranslated(text, source, t, missing=t != source) for t in targets]
