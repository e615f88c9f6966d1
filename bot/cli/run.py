"""`daraja run`: start the bot."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.settings import Settings


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
    receiving = _one_receiver(settings)
    warn_at_start(settings)
    try:
        run(settings)
    except InvalidToken:
        # PTB's message quotes the token in full; say which setting is wrong instead.
        raise ConfigError(
            "DARAJA_TELEGRAM_TOKEN: the Bot API rejected the token; "
            "copy it again from BotFather (/token)"
        ) from None
    finally:
        if receiving is not None:
            os.close(receiving)  # the lock goes with it
    return 0


def _one_receiver(settings: Settings) -> int | None:
    """Refuse a second bot receiving updates for the same SQLite database (`daraja run`
    started twice): the two would fight over getUpdates. The lock goes with the process."""
    from bot.errors import ConfigError
    from storage.backup import receiver_lock, sqlite_path

    if settings.mode == "worker":
        return None
    database = sqlite_path(settings.database_url)
    if database is None or not database.parent.is_dir():
        return None  # PostgreSQL: Telegram's own conflict check; no directory: said later
    fd = receiver_lock(database)
    if fd is None:
        raise ConfigError(
            f"another Daraja is already running on {database} (it holds "
            f"{database.name}.receive-lock): stop it first; only one process may receive "
            "updates (extra delivery workers need PostgreSQL and DARAJA_MODE=worker)"
        )
    return fd
