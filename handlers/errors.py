"""The one error handler: log with context (never message text), answer with a short apology."""

from __future__ import annotations

import logging

from telegram import Update

from bot.context import DarajaContext
from handlers.common import answer, reply_language

log = logging.getLogger("daraja.errors")


async def on_error(update: object, ctx: DarajaContext) -> None:
    """Log the failure without message content; tell the person something went wrong."""
    error = ctx.error
    if isinstance(update, Update):
        chat = update.effective_chat
        log.error(
            "update %s failed in chat %s: %s",
            update.update_id,
            chat.id if chat else None,
            type(error).__name__,
            exc_info=error,
        )
        try:
            lang = await reply_language(update, ctx)
            await answer(update, ctx, "error.internal", lang)
        except Exception:  # noqa: BLE001 - the error path must never raise
            log.warning("could not tell the user about a failure")
    else:
        log.error("background failure: %s", type(error).__name__, exc_info=error)
