"""Value types shared by the translation engine's parts and its callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

LANGUAGES: tuple[str, ...] = ("ht", "fr", "en", "sw")
PIVOT_LANGUAGE = "en"


class Route(StrEnum):
    """How a translation was produced."""

    SAME = "same"  # already in the target language: passed through untranslated
    DIRECT = "direct"  # one package for the pair
    MULTILINGUAL = "multilingual"  # one multilingual package with a target prefix
    PIVOT = "pivot"  # source -> en -> target, two hops
    REMOTE = "libretranslate"  # a LibreTranslate server
    NONE = "none"  # no model could serve the pair: the original is passed on, flagged


class Flag(StrEnum):
    """Why a reader should look at the original."""

    LOW_CONFIDENCE = "low_confidence"
    EMPTY = "empty_output"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    REPEATED = "repeated_ngrams"
    PASSTHROUGH = "untranslated"
    SPAN_REPAIRED = "span_repaired"
    TRUNCATED_INPUT = "split_long_input"
    LANGUAGE_UNCERTAIN = "language_uncertain"
    NO_MODEL = "no_model"
    FROM_SPEECH = "from_speech"  # the source text is a transcript: spans are unverified


@dataclass(frozen=True)
class LanguageGuess:
    """A detected language and how it was decided."""

    language: str
    decided_by: str  # "given" | "classifier" | "prior:chat" | "prior:author" | "script" ...
    confidence: float  # 0..1


@dataclass(frozen=True)
class Translation:
    """The result of translating one message into one target language."""

    text: str
    source: str
    target: str
    source_decided_by: str
    route: Route
    models: tuple[str, ...] = ()
    score: float | None = None  # 0..1 confidence from the model's log-probabilities
    flags: tuple[Flag, ...] = ()
    spans: tuple[str, ...] = field(default=())  # protected spans kept byte-identical

    @property
    def flagged(self) -> bool:
        """Whether a reader should be warned and shown the original."""
        return bool(self.flags)
