"""`daraja run`: start the bot."""

from __future__ import annotations

import argparse
import os
from typing import Any


def register(sub: Any) -> None:
    """Add `daraja run`."""
    parser: argparse.ArgumentParser = sub.add_parser("run", help="start the bot")
    parser.add_argument("--webhook", action="store_true", help="serve webhooks instead of polling")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from telegram.error import InvalidToken

    from bot.app import run
    from bot.errors import ConfigError
    from bot.observability.logging_setup import setup_logging
    from bot.observability.startup_warnings import warn_at_start
    from bot.settings import load_settings

    settings = load_settings(**({"mode": "webhook"} if args.webhook else {}))
    # The configured secrets are masked in every log line, whatever their shape.
    setup_logging(
        verbose=args.verbose,
        level=settings.log_level,
        json_lines=settings.log_json,
        secrets=settings.secret_values(),
        log_content=settings.log_content,
    )
    settings.require_token()
    # Everything the bot writes (database, its -wal and -shm, temporary files) is police
    # traffic: readable by the bot's own user only.
    os.umask(0o077)
    warn_at_start(settings)
    try:
        run(settings)
    except InvalidToken:
        # PTB's message quotes the token in full; say which setting is wrong instead.
        raise ConfigError(
            "DARAJA_TELEGRAM_TOKEN: the Bot API rejected the token; "
            "copy it again from BotFather (/token)"
        ) from None
    return 0
