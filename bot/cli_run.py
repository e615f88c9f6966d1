"""`daraja run`: start the bot."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add `daraja run`."""
    parser: argparse.ArgumentParser = sub.add_parser("run", help="start the bot")
    parser.add_argument("--webhook", action="store_true", help="serve webhooks instead of polling")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bot.app import run
    from bot.logging_setup import setup_logging
    from bot.settings import load_settings

    settings = load_settings(**({"mode": "webhook"} if args.webhook else {}))
    # Issue 10: the configured secrets are masked in every log line, whatever their shape.
    setup_logging(
        verbose=args.verbose,
        level=settings.log_level,
        json_lines=settings.log_json,
        secrets=settings.secret_values(),
    )
    settings.require_token()
    run(settings)
    return 0
