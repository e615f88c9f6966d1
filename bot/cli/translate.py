"""`daraja translate`: translate text offline with the installed models."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add `daraja translate`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "translate",
        help="translate text offline with the installed models",
        description="Translate TEXT (or standard input with '-') with the models in "
        "DARAJA_MODELS_DIR and show the route, models, score, flags and verdict. With "
        "--batch, standard input holds one JSON object per line "
        '({"text": ..., "to": ..., "from": ..., "chat_languages": [...]}; "to" defaults to '
        "--to) and standard output gets one JSON object per line, in the same order; a bad "
        'line gets {"line": N, "error": ...} and the others are still translated.',
    )
    parser.add_argument("text", nargs="?", help="text to translate, or '-' to read standard input")
    parser.add_argument(
        "--to",
        dest="target",
        metavar="LANG",
        help="target language (ht, fr, en, sw); required unless every --batch line has 'to'",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="JSON lines in on standard input, JSON lines out (one process for many messages)",
    )
    parser.add_argument(
        "--from", dest="source", metavar="LANG", help="source language (default: detected)"
    )
    parser.add_argument(
        "--chat-language",
        action="append",
        default=[],
        metavar="LANG",
        help="language of the chat, a prior for detection (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="run the models' self-test first and report failing pairs",
    )
    parser.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> int:
    from bot.engines.factory import build_engine
    from bot.settings import load_settings
    from translation.errors import TranslationError

    settings = load_settings()
    if args.batch:
        if args.text is not None:
            print("daraja: --batch reads standard input; give no TEXT", file=sys.stderr)
            return 2
    elif args.text is None or args.target is None:
        print("daraja: give TEXT (or '-') and --to LANG, or use --batch", file=sys.stderr)
        return 2
    text = sys.stdin.read() if args.text == "-" else (args.text or "")
    if not settings.models_dir.is_dir():
        print(
            f"daraja: no model directory at {settings.models_dir}; set DARAJA_MODELS_DIR or "
            "install models with `daraja models install` (see `daraja models catalog`)",
            file=sys.stderr,
        )
        return 1
    engine = build_engine(settings)
    if args.batch:
        return _batch(engine, args)

    async def go() -> Any:
        try:
            if args.self_test:
                report = await engine.self_test()
                for check in report.failures:
                    print(
                        f"self-test failed: {check.source}→{check.target} ({check.model}): "
                        f"{check.reason}",
                        file=sys.stderr,
                    )
            return await engine.translate(
                text, args.target, source=args.source, chat_languages=tuple(args.chat_language)
            )
        finally:
            await engine.close()

    try:
        result = asyncio.run(go())
    except TranslationError as exc:
        print(f"daraja: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(as_json(result), ensure_ascii=False))
        return 0
    print(result.text)
    score = "-" if result.score is None else f"{result.score:.2f}"
    trip = "-" if result.round_trip is None else f"{result.round_trip:.0f}"
    print(
        f"[{result.source}→{result.target} ({result.source_decided_by}), route {result.route}"
        f"{': ' + ' → '.join(result.models) if result.models else ''}, score {score}, "
        f"back-translation chrF {trip}, flags "
        f"{', '.join(str(f) for f in result.flags) or 'none'}: {result.verdict}]",
        file=sys.stderr,
    )
    return 0


def as_json(result: Any) -> dict[str, Any]:
    """One translation as the JSON object `--json` and `--batch` print."""
    return {
        "text": result.text,
        "source": result.source,
        "source_decided_by": result.source_decided_by,
        "target": result.target,
        "route": str(result.route),
        "models": list(result.models),
        "score": result.score,
        "flags": [str(f) for f in result.flags],
        "verdict": str(result.verdict),
        "round_trip_chrf": result.round_trip,
        "back_translation": result.back_text,
        "spans": list(result.spans),
    }


# Lines translated at once in --batch: enough for the engine to batch across messages.
_BATCH_CONCURRENCY = 32


def _batch(engine: Any, args: argparse.Namespace) -> int:
    """JSON lines in, JSON lines out, in order; a bad line answers with its error."""
    from translation.errors import TranslationError

    async def one(number: int, line: str, gate: asyncio.Semaphore) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            return {"line": number, "error": f"not JSON: {exc.msg}"}
        if not isinstance(request, dict) or not isinstance(request.get("text"), str):
            return {"line": number, "error": 'expected an object with a "text" string'}
        target = request.get("to") or args.target
        if not isinstance(target, str):
            return {"line": number, "error": 'no target language: give "to" or --to'}
        chat = request.get("chat_languages") or list(args.chat_language)
        if not isinstance(chat, list) or not all(isinstance(c, str) for c in chat):
            return {"line": number, "error": '"chat_languages" must be a list of codes'}
        source = request.get("from") or args.source
        async with gate:
            try:
                result = await engine.translate(
                    request["text"], target, source=source, chat_languages=tuple(chat)
                )
            except TranslationError as exc:
                return {"line": number, "error": str(exc)}
        return {"line": number, **as_json(result)}

    async def go() -> list[dict[str, Any]]:
        gate = asyncio.Semaphore(_BATCH_CONCURRENCY)
        try:
            lines = [
                (n, line)
                for n, line in enumerate(sys.stdin.read().splitlines(), 1)
                if line.strip()
            ]
            return list(await asyncio.gather(*(one(n, line, gate) for n, line in lines)))
        finally:
            await engine.close()

    answers = asyncio.run(go())
    for answer in answers:
        print(json.dumps(answer, ensure_ascii=False))
    return 1 if any("error" in a for a in answers) else 0
