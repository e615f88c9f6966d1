"""Measure installed models on a reference set: quality against the references (chrF, BLEU),
what quality estimation said (verdict rates), latency; and calibrate routes from the same runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from translation.calibration import GOOD_REFERENCE_CHRF, Entry, Sample, derive, now_iso
from translation.errors import TranslationError
from translation.qe import chrf
from translation.refset import ChangeSet, ParallelSet
from translation.types import Translation, Verdict

# Translations in flight at once: enough for the engine to batch, few enough to time each.
CONCURRENCY = 16
# A translation this close to its reference (sentence chrF) reproduces it up to punctuation
# or word order: flagging it is a false alarm. Below GOOD_REFERENCE_CHRF it is a poor
# translation: passing it as ok is a miss.
MATCHES_REFERENCE_CHRF = 90.0


@dataclass
class PairReport:
    """One pair's figures."""

    source: str
    target: str
    route: str = ""
    models: tuple[str, ...] = ()
    sentences: int = 0
    chrf: float | None = None
    bleu: float | None = None
    verdicts: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    latency_ms_mean: float = 0.0
    latency_ms_p95: float = 0.0
    error: str | None = None
    matching: int = 0  # translations that reproduce their reference
    matching_flagged: int = 0
    poor: int = 0  # translations far from their reference
    poor_ok: int = 0

    def rate(self, *verdicts: Verdict) -> float:
        """Share of the pair's translations with one of these verdicts."""
        if not self.sentences:
            return 0.0
        return sum(self.verdicts.get(str(v), 0) for v in verdicts) / self.sentences

    def as_dict(self) -> dict[str, Any]:
        """For --json."""
        return {
            "pair": f"{self.source}-{self.target}",
            "route": self.route,
            "models": list(self.models),
            "sentences": self.sentences,
            "chrf": self.chrf,
            "bleu": self.bleu,
            "verdicts": {str(v): self.verdicts.get(str(v), 0) for v in Verdict},
            "flagged_rate": round(self.rate(Verdict.DOUBTFUL, Verdict.UNUSABLE), 4),
            "flags": dict(sorted(self.flags.items())),
            "latency_ms_mean": self.latency_ms_mean,
            "latency_ms_p95": self.latency_ms_p95,
            "matching_reference": self.matching,
            "matching_reference_flagged": self.matching_flagged,
            "poor": self.poor,
            "poor_passed_ok": self.poor_ok,
            "error": self.error,
        }


@dataclass
class PairRun:
    """One pair's translations, references and timings (for reports and calibration)."""

    source: str
    target: str
    results: list[Translation]
    references: list[str]
    seconds: list[float]


async def _timed(engine: Any, text: str, source: str, target: str) -> tuple[Translation, float]:
    started = time.perf_counter()
    result = await engine.translate(text, target, source=source)
    return result, time.perf_counter() - started


async def run_pair(engine: Any, refset: ParallelSet, source: str, target: str) -> PairRun:
    """Translate one column of the set into another, CONCURRENCY messages at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(row: dict[str, str]) -> tuple[Translation, float]:
        async with gate:
            return await _timed(engine, row[source], source, target)

    done = await asyncio.gather(*(one(row) for row in refset.rows))
    return PairRun(
        source,
        target,
        [d[0] for d in done],
        [row[target] for row in refset.rows],
        [d[1] for d in done],
    )


def report(run: PairRun) -> PairReport:
    """Corpus chrF/BLEU against the references, verdict and flag counts, latency."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    hyps = [r.text for r in run.results]
    first = run.results[0] if run.results else None
    ordered = sorted(run.seconds)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0
    flags: Counter[str] = Counter(str(f) for r in run.results for f in r.flags)
    sentence = [chrf(r.text, ref) for r, ref in zip(run.results, run.references, strict=True)]
    matching = [
        r for r, c in zip(run.results, sentence, strict=True) if c >= MATCHES_REFERENCE_CHRF
    ]
    poor = [r for r, c in zip(run.results, sentence, strict=True) if c < GOOD_REFERENCE_CHRF]
    return PairReport(
        matching=len(matching),
        matching_flagged=sum(1 for r in matching if r.flagged),
        poor=len(poor),
        poor_ok=sum(1 for r in poor if not r.flagged),
        source=run.source,
        target=run.target,
        route=str(first.route) if first else "",
        models=first.models if first else (),
        sentences=len(hyps),
        chrf=round(CHRF().corpus_score(hyps, [run.references]).score, 2),
        bleu=round(BLEU().corpus_score(hyps, [run.references]).score, 2),
        verdicts=dict(Counter(str(r.verdict) for r in run.results)),
        flags=dict(flags),
        latency_ms_mean=round(statistics.fmean(run.seconds) * 1000, 2) if run.seconds else 0.0,
        latency_ms_p95=round(p95 * 1000, 2),
    )


async def evaluate(
    engine: Any,
    refset: ParallelSet,
    pairs: Sequence[tuple[str, str]] | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> tuple[list[PairReport], list[PairRun]]:
    """Every pair of the set that the models serve (or `pairs`): reports and raw runs."""
    reports: list[PairReport] = []
    runs: list[PairRun] = []
    router = await engine.router()
    for source, target in pairs or refset.pairs():
        try:
            plan = router.plan(source, target)
        except TranslationError as exc:
            reports.append(PairReport(source, target, error=str(exc)))
            continue
        progress(f"{source}→{target} ({' → '.join(plan.models)}): {len(refset.rows)} sentences")
        run = await run_pair(engine, refset, source, target)
        runs.append(run)
        reports.append(report(run))
    return reports, runs


@dataclass
class ChangeReport:
    """How many critical edits quality estimation caught."""

    candidates: int
    flagged: int
    by_change: dict[str, tuple[int, int]]  # change kind -> (flagged, total)
    missed: list[dict[str, Any]]
    flags: dict[str, int] = field(default_factory=dict)  # which checks fired, how often

    def as_dict(self) -> dict[str, Any]:
        """For --json."""
        return {
            "candidates": self.candidates,
            "flagged": self.flagged,
            "flagged_rate": round(self.flagged / self.candidates, 4) if self.candidates else 0,
            "by_change": {k: {"flagged": f, "total": t} for k, (f, t) in self.by_change.items()},
            "missed_lines": [m["line"] for m in self.missed],
            "flags": dict(sorted(self.flags.items())),
        }


async def evaluate_changes(engine: Any, changes: ChangeSet) -> ChangeReport:
    """Run quality estimation on every candidate of a changes set."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(text: str, candidate: str, src: str, tgt: str) -> Translation:
        async with gate:
            result: Translation = await engine.check(text, candidate, src, tgt)
            return result

    results = await asyncio.gather(
        *(one(c.source, c.candidate, c.source_lang, c.target_lang) for c in changes.changes)
    )
    by_change: dict[str, list[int]] = {}
    missed: list[dict[str, Any]] = []
    for change, result in zip(changes.changes, results, strict=True):
        counts = by_change.setdefault(change.change, [0, 0])
        counts[1] += 1
        if result.flagged:
            counts[0] += 1
        else:
            missed.append({"line": change.line, "flags": [str(f) for f in result.flags]})
    flagged = sum(c[0] for c in by_change.values())
    return ChangeReport(
        len(changes.changes),
        flagged,
        {k: (v[0], v[1]) for k, v in by_change.items()},
        missed,
        dict(Counter(str(f) for r in results for f in r.flags)),
    )


def calibration_entries(engine: Any, runs: Sequence[PairRun], reference: str) -> list[Entry]:
    """One calibration entry per pair run (raises CalibrationError for a pair too poor)."""
    entries: list[Entry] = []
    for run in runs:
        samples = [
            Sample(r.score, r.round_trip, chrf(r.text, ref))
            for r, ref in zip(run.results, run.references, strict=True)
        ]
        thresholds, good = derive(samples)
        first = run.results[0]
        digests = tuple(engine.package_digest(m) for m in first.models)
        entries.append(
            Entry(
                pair=f"{run.source}-{run.target}",
                models=first.models,
                digests=digests,
                thresholds=thresholds,
                good_samples=good,
                reference=reference,
                created_at=now_iso(),
            )
        )
    return entries
