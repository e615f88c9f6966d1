"""Per-model thresholds for quality estimation, measured on a reference set.

A model's confidence and round-trip similarity mean different things for different models (a
tiny phrasebook model is sure of itself, a large one spreads its probability), so the bars a
translation must clear are measured per route on human translations: `daraja models calibrate
SET.tsv` translates the set, keeps the translations that match their reference well (chrF >=
GOOD_REFERENCE_CHRF: what a good translation from this model looks like), and sets the "ok"
bar where OK_QUANTILE of them clear it, minus a tolerance for sampling noise. When the run
also holds enough poor translations (chrF < GOOD_REFERENCE_CHRF), the bar is raised to the value
that best tells the two apart (Youden's J: share of poor flagged minus share of good flagged),
so a model that produces many near-misses is held to what separates them. The "unusable" bar
is half of the "ok" bar. The result is stored beside the models (`calibration.json` in the models
directory) with the models' digests: a model replaced since is uncalibrated again.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from translation.errors import TranslationError
from translation.qe import CONSERVATIVE, Thresholds

FILE_NAME = "calibration.json"
# A translation at least this close to its human reference (chrF) counts as a good one.
GOOD_REFERENCE_CHRF = 60.0
# The "ok" bar lets this share of good translations through...
OK_QUANTILE = 0.02
# ...lowered by this much (confidence, round-trip chrF) so a new sample near the edge passes.
SCORE_TOLERANCE = 0.05
ROUND_TRIP_TOLERANCE = 5.0
# Below this many good translations a route's bars would be noise: it stays uncalibrated.
MIN_GOOD_SAMPLES = 20


class CalibrationError(TranslationError):
    """A reference set that cannot calibrate a route (too few good translations)."""


@dataclass(frozen=True)
class Sample:
    """One reference translation: the model's confidence, the round trip, the reference chrF."""

    score: float | None
    round_trip: float | None
    reference_chrf: float


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.floor(q * (len(ordered) - 1))))
    return ordered[index]


def _separating(good: Sequence[float], poor: Sequence[float]) -> float | None:
    """The bar that best separates good from poor values (max Youden's J), or None when there
    are too few poor values to say."""
    if len(poor) < MIN_GOOD_SAMPLES or not good:
        return None
    best, best_j = None, 0.0
    for bar in sorted(set(good) | set(poor)):
        flagged_poor = sum(1 for v in poor if v < bar) / len(poor)
        flagged_good = sum(1 for v in good if v < bar) / len(good)
        if flagged_poor - flagged_good > best_j:
            best, best_j = bar, flagged_poor - flagged_good
    return best


def _bar(good: Sequence[float], poor: Sequence[float], tolerance: float, default: float) -> float:
    if not good:
        return default
    bar = max(0.0, _quantile(good, OK_QUANTILE) - tolerance)
    separating = _separating(good, poor)
    return max(bar, separating) if separating is not None else bar


def derive(samples: Sequence[Sample]) -> tuple[Thresholds, int]:
    """Thresholds from one route's samples, and how many good translations they rest on."""
    good = [s for s in samples if s.reference_chrf >= GOOD_REFERENCE_CHRF]
    poor = [s for s in samples if s.reference_chrf < GOOD_REFERENCE_CHRF]
    if len(good) < MIN_GOOD_SAMPLES:
        raise CalibrationError(
            f"only {len(good)} of {len(samples)} translations match their reference "
            f"(chrF >= {GOOD_REFERENCE_CHRF:g}); at least {MIN_GOOD_SAMPLES} are needed: "
            "use a larger reference set, or this model is not good enough for the pair"
        )
    ok_score = _bar(
        [s.score for s in good if s.score is not None],
        [s.score for s in poor if s.score is not None],
        SCORE_TOLERANCE,
        CONSERVATIVE.ok_score,
    )
    ok_trip = _bar(
        [s.round_trip for s in good if s.round_trip is not None],
        [s.round_trip for s in poor if s.round_trip is not None],
        ROUND_TRIP_TOLERANCE,
        CONSERVATIVE.ok_round_trip,
    )
    thresholds = Thresholds(
        ok_score=round(ok_score, 4),
        unusable_score=round(ok_score / 2, 4),
        ok_round_trip=round(ok_trip, 2),
        unusable_round_trip=round(ok_trip / 2, 2),
        calibrated=True,
    )
    return thresholds, len(good)


@dataclass(frozen=True)
class Entry:
    """One route's stored calibration."""

    pair: str  # "ht-fr"
    models: tuple[str, ...]
    digests: tuple[str, ...]
    thresholds: Thresholds
    good_samples: int
    reference: str
    created_at: str


class CalibrationBook:
    """The calibrations stored in one models directory (read on first use, written whole)."""

    def __init__(self, models_dir: Path | None) -> None:
        self.path = Path(models_dir) / FILE_NAME if models_dir is not None else None
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] | None = None

    def entries(self) -> dict[str, Entry]:
        """Every stored route, by pair."""
        with self._lock:
            if self._entries is None:
                self._entries = self._read()
            return dict(self._entries)

    def _read(self) -> dict[str, Entry]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            out: dict[str, Entry] = {}
            for pair, raw in dict(doc.get("pairs", {})).items():
                t = raw["thresholds"]
                out[pair] = Entry(
                    pair=pair,
                    models=tuple(raw["models"]),
                    digests=tuple(raw["digests"]),
                    thresholds=Thresholds(
                        float(t["ok_score"]),
                        float(t["unusable_score"]),
                        float(t["ok_round_trip"]),
                        float(t["unusable_round_trip"]),
                        calibrated=True,
                    ),
                    good_samples=int(raw.get("good_samples", 0)),
                    reference=str(raw.get("reference", "")),
                    created_at=str(raw.get("created_at", "")),
                )
            return out
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # An unreadable file must not stop translation: every model is then uncalibrated.
            import logging

            logging.getLogger(__name__).error(
                "%s unreadable (%s): every model is treated as uncalibrated",
                self.path,
                type(exc).__name__,
            )
            return {}

    def thresholds(
        self, source: str, target: str, models: Sequence[str], digests: Sequence[str]
    ) -> Thresholds:
        """The route's calibrated bars, or the conservative defaults when it has none (or its
        models changed since)."""
        entry = self.entries().get(f"{source}-{target}")
        if entry is None or entry.models != tuple(models) or entry.digests != tuple(digests):
            return CONSERVATIVE
        return entry.thresholds

    def calibrated_models(self) -> dict[str, list[str]]:
        """Model id -> the pairs it is calibrated for."""
        out: dict[str, list[str]] = {}
        for entry in self.entries().values():
            for model in entry.models:
                out.setdefault(model, []).append(entry.pair)
        return out

    def store(self, entries: Sequence[Entry]) -> None:
        """Add or replace routes and write the file atomically."""
        if self.path is None:
            raise CalibrationError("no models directory to store the calibration in")
        with self._lock:
            current = self._read()
            for entry in entries:
                current[entry.pair] = entry
            doc: dict[str, Any] = {
                "version": 1,
                "pairs": {
                    pair: {
                        "models": list(e.models),
                        "digests": list(e.digests),
                        "thresholds": e.thresholds.as_dict(),
                        "good_samples": e.good_samples,
                        "reference": e.reference,
                        "created_at": e.created_at,
                    }
                    for pair, e in sorted(current.items())
                },
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".calibration-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2, ensure_ascii=False)
            os.replace(tmp, self.path)
            self._entries = current

    def forget(self, model: str) -> None:
        """Drop every route that uses `model` (it was removed)."""
        if self.path is None or not self.path.is_file():
            return
        kept = {p: e for p, e in self.entries().items() if model not in e.models}
        with self._lock:
            self._entries = None
        self.path.unlink()
        self.store(list(kept.values()))


def now_iso() -> str:
    """UTC timestamp for a calibration entry."""
    return datetime.now(UTC).isoformat(timespec="seconds")
