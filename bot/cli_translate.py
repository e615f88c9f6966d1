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
        "DARAJA_MODELS_DIR and show the route, models, score and flags.",
    )
    parser.add_argument("text", help="text to translate, or '-' to read standard input")
    parser.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="LANG",
        help="target language (ht, fr, en, sw)",
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
    from bot.engine_factory import build_engine
    from bot.settings import load_settings
    from translation.errors import TranslationError

    settings = load_settings()
    text = sys.stdin.read() if args.text == "-" else args.text
    if not settings.models_dir.is_dir():
        print(
            f"daraja: no model directory at {settings.models_dir}; set DARAJA_MODELS_DIR or "
            "install models with `daraja models install` (see `daraja models catalog`)",
            file=sys.stderr,
        )
        return 1
    engine = build_engine(settings)

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
        print(
            json.dumps(
                {
                    "text": result.text,
                    "source": result.source,
                    "source_decided_by": result.source_decided_by,
                    "target": result.target,
                    "route": str(result.route),
                    "models": list(result.models),
                    "score": result.score,
                    "flags": [str(f) for f in result.flags],
                    "spans": list(result.spans),
                },
                ensure_ascii=False,
            )
        )
        return 0
    print(result.text)
    score = "-" if result.score is None else f"{result.score:.2f}"
    print(
        f"[{result.source}→{result.target} ({result.source_decided_by}), route {result.route}"
        f"{': ' + ' → '.join(result.models) if result.models else ''}, score {score}, flags "
        f"{', '.join(str(f) for f in result.flags) or 'none'}]",
        file=sys.stderr,
    )
    return 0
