"""`daraja demo`: the offline demo of a joint operation."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add `daraja demo`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run the offline demo of a joint operation",
        description="Play a scripted joint operation (PNH in Kreyòl and French, MSS in English "
        "and Swahili) through a local Bot API sandbox and the real bot, offline, with the "
        "bundled models (phrasebook toys: they translate the demo's sentences, little else); "
        "print what each group saw and verify the audit log.",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the database as DIR/daraja.db for inspection",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON transcript")
    parser.add_argument("--no-color", action="store_true", help="no terminal colours")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bot.devtools.demo import print_transcript, run_demo

    transcript = asyncio.run(run_demo(args.keep.resolve() if args.keep else None))
    if args.json:
        print(json.dumps(asdict(transcript), ensure_ascii=False, indent=2))
    else:
        color = sys.stdout.isatty() and not args.no_color and "NO_COLOR" not in os.environ
        print_transcript(transcript, sys.stdout, color=color)
    ok = not transcript.missing and transcript.audit.get("ok") is not False
    return 0 if ok else 1
