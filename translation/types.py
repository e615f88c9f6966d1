"""Value types shared by the translation engine's parts and its callers."""

from __future__ import annotations

from collections.abc import Iterable
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
    # Quality estimation (translation/qe.py): what the checks behind the verdict found.
    MEANING_CHANGED = "meaning_changed"  # a negation, number or direction appeared or vanished
    WRONG_LANGUAGE = "wrong_language"  # the output is not in the target language
    ROUND_TRIP_DIFFERENT = "round_trip_different"  # translated back, it reads differently
    UNRELIABLE = "unreliable"  # far below the model's calibrated bar
    # Informational: they explain a verdict (`/how`) without lowering it.
    ROUND_TRIP_SIMILAR = "round_trip_similar"
    UNCALIBRATED = "uncalibrated"  # the model has no thresholds of its own: stricter defaults
    LANGUAGE_TAG = "language_tag_leaked"  # a model wrote a language tag ("Swh Latn …")
    FROM_SPEECH = "from_speech"  # the source text is a transcript: spans are unverified


class Verdict(StrEnum):
    """What a reader should make of one copy."""

    OK = "ok"
    DOUBTFUL = "doubtful"  # shown with a warning and the original
    UNUSABLE = "unusable"  # the original comes first; the guess is marked as such


# Flags that make a copy unusable on their own, and flags that explain without doubting.
UNUSABLE_FLAGS = frozenset({Flag.EMPTY, Flag.NO_MODEL, Flag.UNRELIABLE})
INFO_FLAGS = frozenset(
    {
        Flag.TRUNCATED_INPUT,
        Flag.LANGUAGE_UNCERTAIN,
        Flag.ROUND_TRIP_SIMILAR,
        Flag.UNCALIBRATED,
        Flag.FROM_SPEECH,
    }
)
# The model's own confidence and the round trip are independent estimates: both doubting
# makes the copy unusable.
_INDEPENDENT = frozenset({Flag.LOW_CONFIDENCE, Flag.ROUND_TRIP_DIFFERENT})


def verdict_of(flags: Iterable[str]) -> Verdict:
    """The verdict the flags of one copy add up to (stored flags are enough to recompute it)."""
    found = {str(f) for f in flags}
    if found & {str(f) for f in UNUSABLE_FLAGS}:
        return Verdict.UNUSABLE
    if {str(f) for f in _INDEPENDENT} <= found:
        return Verdict.UNUSABLE
    if found - {str(f) for f in INFO_FLAGS}:
        return Verdict.DOUBTFUL
    return Verdict.OK


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
    # Quality estimation: chrF (0..100) of the source against the output translated back,
    # and that back-translation (what the partner's copy says, in the source language).
    round_trip: float | None = None
    back_text: str | None = None

    @property
    def verdict(self) -> Verdict:
        """ok, doubtful or unusable, from the flags."""
        return verdict_of(self.flags)

    @property
    def flagged(self) -> bool:
        """Whether a reader should be warned and shown the original."""
        return self.verdict is not Verdict.OK
