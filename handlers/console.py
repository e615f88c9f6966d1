"""`/console` in a private chat: a one-time link to the web console."""

from __future__ import annotations

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode

from bot.context import DarajaContext
from bot.domain import escape_html
from bot.errors import AccessDenied
from handlers.common import answer, caller_of, reply_language


async def console_command(update: Update, ctx: DarajaContext) -> None:
    """/console: a link for this person only, single use and short-lived."""
    caller = caller_of(update, ctx)
    message = update.effective_message
    if caller is None or message is None:
        return
    lang = await reply_language(update, ctx)
    auth = ctx.services.extra.get("console_auth")
    base = ctx.services.extra.get("console_url")
    if auth is None or not base:
        await answer(update, ctx, "console.disabled", lang)
        return
    try:
        link = await auth.issue_link(caller.user_id, telegram_language=caller.telegram_language)
    except AccessDenied:
        await answer(update, ctx, "console.not_allowed", lang)
        return
    url = f"{base.rstrip('/')}/console/login?t={link.token}"
    text = ctx.services.i18n.t("console.link", lang, minutes=link.minutes, url=escape_html(url))
    # No link preview: a preview fetch must not be the first to see the link.
    await message.reply_text(
        text, parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)
    )
