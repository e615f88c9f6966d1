"""Quality estimation: the checks that turn one translation into a verdict (ok / doubtful /
unusable) without a reference translation.

- the model's confidence against thresholds calibrated for that model (translation/calibration);
- the round trip: the output translated back by the reverse route, compared with the source by
  chrF (sacrebleu), on the masked texts so that protected spans (numbers, callsigns, places),
  which come back verbatim even from nonsense, do not count as agreement;
- critical content (translation/critical): negations, numbers and directions on one side only;
- the output language: language tags leaked by multilingual models, or text identified with
  confidence as another language than the target.
The flags these add are combined by `translation.types.verdict_of`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from translation.critical import Lexicons, changed
from translation.types import LANGUAGES, Flag, LanguageGuess

# Tags a multilingual model may leak into its output: NLLB (`swh_Latn`), M2M-100 (`__sw__`),
# OPUS-MT (`>>swa<<`), T5-style (`<2sw>`).
_LANGUAGE_TAG = re.compile(
    r"\b[a-z]{3}_[A-Z][a-z]{3}\b|__[a-z]{2,3}__|>>[a-z]{2,3}<<|<2[a-z]{2,3}>"
)
_PLACEHOLDER = re.compile(r"\[\s*\d+\s*\]")
# Output language: only an identification this sure, over this many words, counts against the
# output; short outputs ("Sawa.") and near-cognates are too easily mistaken.
WRONG_LANGUAGE_CONFIDENCE = 0.9
WRONG_LANGUAGE_MIN_WORDS = 3
_WORD = re.compile(r"[^\W\d_]{2,}")
# The round trip needs this many letters of source to mean anything ("OK", "KE-3 14:30" pass).
ROUND_TRIP_MIN_CHARS = 8


@dataclass(frozen=True)
class Thresholds:
    """The bars one route's translations are held to (confidence 0..1, round trip chrF)."""

    ok_score: float
    unusable_score: float
    ok_round_trip: float
    unusable_round_trip: float
    calibrated: bool = False

    def as_dict(self) -> dict[str, float]:
        """The four numbers, for storing."""
        return {
            "ok_score": self.ok_score,
            "unusable_score": self.unusable_score,
            "ok_round_trip": self.ok_round_trip,
            "unusable_round_trip": self.unusable_round_trip,
        }


# An uncalibrated model: scores are not comparable across models, so the bars sit where a good
# translation from a typical model still clears them (Transformer NMT on in-domain text: mean
# token probability above ~0.6, round-trip chrF above ~50) and the copy is flagged otherwise.
# Strict on purpose: a model that has not shown what its good output looks like is doubted.
CONSERVATIVE = Thresholds(
    ok_score=0.6, unusable_score=0.3, ok_round_trip=50.0, unusable_round_trip=25.0
)


class _Chrf:
    """sacrebleu's chrF, imported on first use (its import costs ~150 ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metric: Any = None

    def __call__(self, hypothesis: str, reference: str) -> float:
        metric = self._metric
        if metric is None:
            with self._lock:
                if self._metric is None:
                    from sacrebleu.metrics.chrf import CHRF

                    self._metric = CHRF()
                metric = self._metric
        return float(metric.sentence_score(hypothesis, [reference]).score)


chrf = _Chrf()


def without_placeholders(text: str) -> str:
    """Masked text with its placeholders removed (spans are compared by the engine)."""
    return " ".join(_PLACEHOLDER.sub(" ", text).split())


def round_trip_similarity(masked_source: str, masked_back: str) -> float | None:
    """chrF (0..100) of the back-translation against the source, or None when the source has
    too little text to compare."""
    source = without_placeholders(masked_source)
    if sum(ch.isalpha() for ch in source) < ROUND_TRIP_MIN_CHARS:
        return None
    return chrf(without_placeholders(masked_back), source)


def leaked_tag(output: str) -> bool:
    """Whether the output carries a model's language tag."""
    return _LANGUAGE_TAG.search(output) is not None


def wrong_language(
    output: str,
    target: str,
    detect: Callable[..., LanguageGuess],
    candidates: Sequence[str] = LANGUAGES,
) -> bool:
    """Whether the output is confidently identified as another language than the target."""
    if target not in candidates or len(_WORD.findall(output)) < WRONG_LANGUAGE_MIN_WORDS:
        return False
    guess = detect(output, candidates=tuple(candidates))
    return guess.language != target and guess.confidence >= WRONG_LANGUAGE_CONFIDENCE


def assess(
    *,
    source: str,
    source_lang: str,
    output: str,
    target_lang: str,
    score: float | None,
    round_trip: float | None,
    thresholds: Thresholds,
    lexicons: Lexicons,
    detect: Callable[..., LanguageGuess],
) -> list[Flag]:
    """The quality-estimation flags of one translation (the heuristic ones come from
    translation.quality)."""
    flags: list[Flag] = []
    if score is not None and score < thresholds.unusable_score:
        flags.append(Flag.UNRELIABLE)
    if round_trip is not None:
        if round_trip < thresholds.ok_round_trip:
            flags.append(Flag.ROUND_TRIP_DIFFERENT)
            if round_trip < thresholds.unusable_round_trip:
                flags.append(Flag.UNRELIABLE)
        else:
            flags.append(Flag.ROUND_TRIP_SIMILAR)
    if changed(source, source_lang, output, target_lang, lexicons):
        flags.append(Flag.MEANING_CHANGED)
    if leaked_tag(output) or wrong_language(output, target_lang, detect):
        flags.append(Flag.WRONG_LANGUAGE)
    if not thresholds.calibrated:
        flags.append(Flag.UNCALIBRATED)
    return flags
