"""`daraja eval SET.tsv`: measure the installed models on an operator's reference set."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bot.errors import UserInputError


def register(sub: Any) -> None:
    """Add `daraja eval`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "eval",
        help="measure the installed models on a reference set (chrF, BLEU, verdicts, latency)",
        description="Translate every pair of a reference set (TSV, one column per language, "
        "like tools/phrasebook/) with the models in DARAJA_MODELS_DIR and report per pair "
        "chrF and BLEU against the references, how quality estimation judged the copies "
        "(ok / doubtful / unusable) and latency. A set with the header "
        "source_lang, source, target_lang, candidate, change instead reports how many "
        "candidates with a critical edit were flagged.",
    )
    parser.add_argument("set", type=Path, metavar="SET.tsv", help="the reference set")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--pairs", metavar="FROM-TO,...", help="only these pairs (default: every pair)"
    )
    parser.set_defaults(func=_eval)


def parse_pairs(text: str | None) -> list[tuple[str, str]] | None:
    """`ht-en,fr-sw` -> [("ht", "en"), ("fr", "sw")]."""
    if not text:
        return None
    pairs: list[tuple[str, str]] = []
    for item in text.split(","):
        src, sep, tgt = item.strip().partition("-")
        if not sep or not src or not tgt:
            raise UserInputError(f"--pairs: {item!r} is not a pair like ht-en")
        pairs.append((src, tgt))
    return pairs


def load_set(engine: Any, path: Path) -> Any:
    """Read a reference set against the languages the installed models serve."""
    from translation.refset import RefSetError, load
    from translation.types import LANGUAGES

    router = asyncio.run(engine.router())
    try:
        # Daraja's languages and any an installed model serves; pairs without a model are
        # reported as not served.
        return load(path, set(LANGUAGES) | set(router.languages))
    except RefSetError as exc:
        raise UserInputError(str(exc)) from None


def _progress(message: str) -> None:
    print(f"eval: {message}", file=sys.stderr, flush=True)


def _eval(args: argparse.Namespace) -> int:
    from bot.engines.factory import build_engine
    from bot.settings import load_settings
    from translation.evaluate import evaluate, evaluate_changes
    from translation.refset import ChangeSet

    settings = load_settings()
    engine = build_engine(settings)
    refset = load_set(engine, args.set)
    pairs = parse_pairs(args.pairs)

    async def go() -> Any:
        try:
            if isinstance(refset, ChangeSet):
                return await evaluate_changes(engine, refset)
            reports, _runs = await evaluate(engine, refset, pairs, _progress)
            return reports
        finally:
            await engine.close()

    result = asyncio.run(go())
    if isinstance(refset, ChangeSet):
        doc = result.as_dict()
        if args.json:
            print(json.dumps(doc, ensure_ascii=False))
            return 0
        print(
            f"{doc['flagged']} of {doc['candidates']} candidates with a critical edit flagged "
            f"({doc['flagged_rate']:.1%})"
        )
        for kind, counts in doc["by_change"].items():
            print(f"  {kind:<12} {counts['flagged']}/{counts['total']}")
        if doc["missed_lines"]:
            print("  missed (line numbers): " + ", ".join(map(str, doc["missed_lines"])))
        return 0
    rows = [r.as_dict() for r in result]
    total = sum(r["sentences"] for r in rows)
    flagged = sum(r["verdicts"]["doubtful"] + r["verdicts"]["unusable"] for r in rows)
    matching = sum(r["matching_reference"] for r in rows)
    matching_flagged = sum(r["matching_reference_flagged"] for r in rows)
    poor = sum(r["poor"] for r in rows)
    poor_ok = sum(r["poor_passed_ok"] for r in rows)
    summary = {
        "set": str(args.set),
        "matching_reference": matching,
        "matching_reference_flagged": matching_flagged,
        "poor": poor,
        "poor_passed_ok": poor_ok,
        "sentences_per_pair": len(refset.rows),
        "translations": total,
        "flagged": flagged,
        "flagged_rate": round(flagged / total, 4) if total else 0.0,
        "pairs": rows,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    print(
        f"{'pair':<7} {'route':<12} {'chrF':>6} {'BLEU':>6} {'ok':>6} {'doubt':>6} "
        f"{'unus.':>6} {'ms':>6} {'p95':>6}"
    )
    for r in rows:
        if r["error"]:
            print(f"{r['pair']:<7} not served: {r['error']}")
            continue
        n = r["sentences"] or 1
        v = r["verdicts"]
        print(
            f"{r['pair']:<7} {r['route']:<12} {r['chrf']:>6.1f} {r['bleu']:>6.1f} "
            f"{v['ok'] / n:>6.1%} {v['doubtful'] / n:>6.1%} {v['unusable'] / n:>6.1%} "
            f"{r['latency_ms_mean']:>6.1f} {r['latency_ms_p95']:>6.1f}"
        )
    print(
        f"{flagged} of {total} translations flagged doubtful or unusable "
        f"({summary['flagged_rate']:.1%})"
    )
    print(
        f"false alarms: {matching_flagged} of {matching} translations that reproduce their "
        f"reference (chrF >= 90) flagged; misses: {poor_ok} of {poor} poor translations "
        "(chrF < 60) passed as ok"
    )
    return 0
