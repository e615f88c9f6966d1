"""`/flash TEXT`, `/acks`, and presses of a FLASH's acknowledge button (`ack:<id>`)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ParseMode

from bot.context import DarajaContext
from bot.domain import escape_html
from bot.errors import DarajaError
from bot.rendering.formatting import format_time
from bot.services.flash_acks import parse_ack_data
from handlers.common import answer, caller_of, reply_language, service_call, text

log = logging.getLogger(__name__)


async def flash(update: Update, ctx: DarajaContext) -> None:
    """`/flash TEXT` (commanders): relayed at once to every group, to be acknowledged."""
    call = await service_call(update, ctx, ctx.services.flash)
    if call is None:
        return
    message, chat, caller, service, lang = call
    parts = (message.text or "").split(maxsplit=1)
    body = parts[1].strip() if len(parts) > 1 else ""
    if not body:
        await answer(update, ctx, "flash.usage", lang)
        return
    try:
        sent = await service.send(
            sender_id=caller.user_id,
            sender_name=caller.display_name,
            telegram_chat_id=chat.id,
            telegram_message_id=message.message_id,
            text=body,
            update_id=update.update_id,
        )
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    if sent.duplicate:
        return
    reply = text(
        ctx, "flash.sent", lang, groups=sent.deliveries, units=", ".join(sent.units) or "-"
    )
    if sent.copy_verdicts:
        i18n = ctx.services.i18n
        per_unit = ", ".join(
            f"{unit}: {i18n.t(f'relay.label.{verdict}', lang)}"
            for unit, verdict in sent.copy_verdicts
        )
        reply += "\n" + text(ctx, "flash.sent_units", lang, units=per_unit)
    await message.reply_text(reply, parse_mode=ParseMode.HTML, do_quote=chat.type != "private")


async def acks(update: Update, ctx: DarajaContext) -> None:
    """`/acks [FLASH id]`: which units acknowledged the sender's latest FLASH, and who did."""
    message = update.effective_message
    caller = caller_of(update, ctx)
    service = ctx.services.flash
    if message is None or caller is None or service is None:
        return
    lang = await reply_language(update, ctx)
    args = (message.text or "").split()[1:]
    flash_id = int(args[0]) if args and args[0].isdigit() else None
    try:
        report = await service.acks(caller.user_id, flash_id)
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    await message.reply_text(service.render_acks(report, lang), parse_mode=ParseMode.HTML)


async def ack_pressed(update: Update, ctx: DarajaContext) -> None:
    """A press of "acknowledge": recorded once per unit; the group's copy then shows who and
    when, and the button goes away. Refusals are answered in the group's language."""
    query = update.callback_query
    chat = update.effective_chat
    caller = caller_of(update, ctx)
    service = ctx.services.flash
    if query is None or chat is None or caller is None or service is None:
        return
    lang = await reply_language(update, ctx)
    flash_id = parse_ack_data(query.data)
    message = query.message
    if flash_id is None or message is None:
        await query.answer(text(ctx, "flash.ack_not_a_copy", lang), show_alert=True)
        return
    original = getattr(message, "text_html", None) or escape_html(
        getattr(message, "text", "") or ""
    )
    # The copy's edit ("acknowledged by …", button gone) goes through the notice outbox.
    result = await service.acknowledge(
        flash_id=flash_id,
        user_id=caller.user_id,
        user_name=caller.display_name,
        telegram_chat_id=chat.id,
        telegram_message_id=message.message_id,
        copy_html=original,
    )
    i18n = ctx.services.i18n
    when = format_time(result.acked_at, lang, result.timezone) if result.acked_at else ""
    if result.status == "acked":
        await query.answer(i18n.t("flash.ack_ok", lang, unit=result.unit))
        return
    if result.status == "already":
        reply = i18n.t("flash.ack_already", lang, name=result.name, unit=result.unit, time=when)
    elif result.status == "other_unit":
        reply = i18n.t("flash.ack_other_unit", lang, unit=result.unit)
    else:
        reply = i18n.t("flash.ack_not_a_copy", lang)
    await query.answer(reply[:190], show_alert=True)
