"""`/report` (`/sitrep`), `/status`, `/where`, `/who`: thin adapters over the status service.

The SITREP conversation: `/report` shows the statuses as buttons; then the location (a
Telegram location share, a typed coordinate, or a place button), the strength (buttons or a
typed number), needs and remarks (typed, or "none"). Only the person who started it can answer;
it is forgotten after ten minutes. `/report STATUS PLACE STRENGTH needs | remarks` does it in one
message.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import filters

from bot.context import DarajaContext
from bot.domain import Role, escape_html
from bot.errors import DarajaError
from bot.services.board import Location, sitrep_lines
from bot.services.sitrep import STATUSES, Draft, ReportDrafts, check_coordinate, parse_strength
from bot.services.sitrep_filing import FiledReport
from handlers.common import answer, caller_of, reply_language, service_call, text

log = logging.getLogger(__name__)

STRENGTH_CHOICES = (2, 4, 6, 8, 10, 12, 16, 20)
PLACE_BUTTONS = 8


class DraftInput(filters.MessageFilter):
    """Matches a group message that answers its author's open SITREP question."""

    def __init__(self, drafts: ReportDrafts) -> None:
        super().__init__(name="DraftInput")
        self.drafts = drafts

    def filter(self, message: Message) -> bool:
        """True when the author has a live draft in this chat."""
        user = message.from_user
        return user is not None and self.drafts.waiting_for_input(message.chat_id, user.id)


# --- /report ---------------------------------------------------------------------------------


async def report(update: Update, ctx: DarajaContext) -> None:
    """`/report` in a unit's group: the one-line form, or the first question of the wizard."""
    call = await service_call(update, ctx, ctx.services.status)
    if call is None:
        return
    message, chat, caller, service, lang = call
    if chat.type not in ("group", "supergroup"):
        await answer(update, ctx, "sitrep.not_unit_chat", lang)
        return
    args = (message.text or "").split(maxsplit=1)
    try:
        await service.report_context(chat.id)
        if len(args) > 1 and args[1].strip():
            sitrep = await service.parse_line(chat.id, args[1], actor=caller.user_id)
            filed = await service.file_report(
                telegram_chat_id=chat.id,
                telegram_message_id=message.message_id,
                author_id=caller.user_id,
                author_name=caller.display_name,
                sitrep=sitrep,
                update_id=update.update_id,
            )
            await _confirm(message, ctx, filed, lang)
            return
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    draft = service.drafts.start(chat.id, caller.user_id)
    sent = await message.reply_text(
        text(ctx, "sitrep.ask_status", lang, name=caller.display_name),
        parse_mode=ParseMode.HTML,
        reply_markup=_status_keyboard(ctx, lang),
    )
    draft.prompt_message_id = sent.message_id
    await service.drafts.save(draft)


async def report_button(update: Update, ctx: DarajaContext) -> None:
    """A tap on a SITREP button (`rep:s:<status>`, `rep:p:<n>`, `rep:n:<n>`, `rep:x`, `rep:c`)."""
    query = update.callback_query
    chat = update.effective_chat
    caller = caller_of(update, ctx)
    service = ctx.services.status
    if query is None or chat is None or caller is None or service is None:
        return
    lang = await reply_language(update, ctx)
    draft = service.drafts.get(chat.id, caller.user_id)
    if draft is None or (
        query.message is not None and draft.prompt_message_id != query.message.message_id
    ):
        await query.answer(text(ctx, "sitrep.not_yours", lang), show_alert=True)
        return
    parts = (query.data or "").split(":")
    kind, value = parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""
    try:
        if kind == "c":
            await service.drafts.discard(chat.id, caller.user_id)
            await query.answer()
            await _edit(query.message, text(ctx, "sitrep.cancelled", lang), None)
            return
        if kind == "s" and draft.step == "status" and value in STATUSES:
            draft.status = value
            draft.step = "location"
        elif kind == "p" and draft.step == "location" and value.isdigit():
            _, places = await service.report_context(chat.id)
            index = int(value)
            if index >= len(places):
                raise DarajaError("bad place button", key="sitrep.expired")
            draft.location = await service.check_location(chat.id, places[index])
            draft.step = "strength"
        elif kind == "n" and draft.step == "strength" and value.isdigit():
            draft.strength = parse_strength(value)
            draft.step = "needs"
        elif kind == "x" and draft.step in ("needs", "remarks"):
            draft.step = "remarks" if draft.step == "needs" else "done"
        else:
            await query.answer(text(ctx, "sitrep.expired", lang), show_alert=True)
            return
    except DarajaError as exc:
        await query.answer(text(ctx, exc.key, lang, **exc.params)[:190], show_alert=True)
        return
    await query.answer()
    if draft.step == "done":
        await _finish(update, ctx, draft, lang, query.message)
        return
    await _ask(ctx, draft, lang, chat.id, query.message, edit=True)


async def report_input(update: Update, ctx: DarajaContext) -> None:
    """A typed answer (or a location share) to the open SITREP question; never relayed."""
    message = update.effective_message
    chat = update.effective_chat
    caller = caller_of(update, ctx)
    service = ctx.services.status
    if message is None or chat is None or caller is None or service is None:
        return
    draft = service.drafts.get(chat.id, caller.user_id)
    if draft is None:
        return
    lang = await reply_language(update, ctx)
    typed = (message.text or "").strip()
    try:
        if draft.step == "location":
            if message.location is not None:
                lat, lon = check_coordinate(message.location.latitude, message.location.longitude)
                draft.location = Location(lat, lon, None)
            elif typed:
                draft.location = await service.check_location(chat.id, typed)
            else:
                return
            draft.step = "strength"
        elif draft.step == "strength" and typed:
            draft.strength = parse_strength(typed)
            draft.step = "needs"
        elif draft.step == "needs" and typed:
            draft.needs = "" if typed in ("-", "—") else typed
            draft.step = "remarks"
        elif draft.step == "remarks" and typed:
            draft.remarks = "" if typed in ("-", "—") else typed
            draft.step = "done"
        else:
            await answer(update, ctx, "sitrep.use_buttons", lang)
            return
    except DarajaError as exc:
        await service.refuse(caller.user_id, exc.key, chat_id=chat.id, detail={"step": draft.step})
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    if draft.step == "done":
        await _finish(update, ctx, draft, lang, message)
        return
    await _ask(ctx, draft, lang, chat.id, message, edit=False)


async def _ask(
    ctx: DarajaContext,
    draft: Draft,
    lang: str,
    chat_id: int,
    anchor: object,
    *,
    edit: bool,
) -> None:
    """Show the draft's next question (editing the prompt after a tap, replying after text)."""
    service = ctx.services.status
    assert service is not None
    markup: InlineKeyboardMarkup | None
    if draft.step == "location":
        _, places = await service.report_context(chat_id)
        rows = [
            [InlineKeyboardButton(name, callback_data=f"rep:p:{i}")]
            for i, name in enumerate(places[:PLACE_BUTTONS])
        ]
        body = text(ctx, "sitrep.ask_location", lang)
        markup = InlineKeyboardMarkup([*_pairs(rows), [_cancel(ctx, lang)]])
    elif draft.step == "strength":
        buttons = [
            InlineKeyboardButton(str(n), callback_data=f"rep:n:{n}") for n in STRENGTH_CHOICES
        ]
        body = text(ctx, "sitrep.ask_strength", lang)
        markup = InlineKeyboardMarkup([buttons[:4], buttons[4:], [_cancel(ctx, lang)]])
    else:
        key = "sitrep.ask_needs" if draft.step == "needs" else "sitrep.ask_remarks"
        body = text(ctx, key, lang)
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        text(ctx, "sitrep.button_none", lang), callback_data="rep:x"
                    ),
                    _cancel(ctx, lang),
                ]
            ]
        )
    if edit and isinstance(anchor, Message):
        await _edit(anchor, body, markup)
    elif isinstance(anchor, Message):
        sent = await anchor.reply_text(body, parse_mode=ParseMode.HTML, reply_markup=markup)
        draft.prompt_message_id = sent.message_id
    # Stored once the question is out: a restart from here carries on at this question.
    await service.drafts.save(draft)


async def _finish(
    update: Update, ctx: DarajaContext, draft: Draft, lang: str, anchor: object
) -> None:
    service = ctx.services.status
    caller = caller_of(update, ctx)
    assert service is not None
    assert caller is not None
    await service.drafts.discard(draft.chat_id, draft.user_id)
    # The message that completed the report names it (unique in the chat, so a replay of the
    # same update is recognised).
    message_id = anchor.message_id if isinstance(anchor, Message) else 0
    try:
        filed = await service.file_report(
            telegram_chat_id=draft.chat_id,
            telegram_message_id=message_id,
            author_id=caller.user_id,
            author_name=caller.display_name,
            sitrep=draft.complete(),
            update_id=update.update_id,
        )
    except DarajaError as exc:
        if isinstance(anchor, Message):
            await anchor.reply_text(text(ctx, exc.key, lang, **exc.params), parse_mode="HTML")
        return
    if isinstance(anchor, Message):
        if update.callback_query is not None:
            await _edit(anchor, _filed_text(ctx, filed, lang), None)
        else:
            await _confirm(anchor, ctx, filed, lang)


async def _confirm(message: Message, ctx: DarajaContext, filed: FiledReport, lang: str) -> None:
    await message.reply_text(
        _filed_text(ctx, filed, lang), parse_mode=ParseMode.HTML, do_quote=True
    )


def _filed_text(ctx: DarajaContext, filed: FiledReport, lang: str) -> str:
    head = text(ctx, "sitrep.filed", lang, unit=filed.unit, groups=filed.deliveries)
    body = sitrep_lines(filed.view, lang, ctx.services.i18n, with_original=False)
    return "\n".join([head, *body])


def _status_keyboard(ctx: DarajaContext, lang: str) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                f"{i}. {ctx.services.i18n.t(f'status.{code}', lang)}",
                callback_data=f"rep:s:{code}",
            )
        ]
        for i, code in enumerate(STATUSES, start=1)
    ]
    return InlineKeyboardMarkup([*_pairs(rows), [_cancel(ctx, lang)]])


def _pairs(rows: list[list[InlineKeyboardButton]]) -> list[list[InlineKeyboardButton]]:
    """Two buttons a row: thumbs reach them on a phone held in one hand."""
    flat = [b for row in rows for b in row]
    return [flat[i : i + 2] for i in range(0, len(flat), 2)]


def _cancel(ctx: DarajaContext, lang: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text(ctx, "sitrep.button_cancel", lang), callback_data="rep:c")


async def _edit(message: object, body: str, markup: InlineKeyboardMarkup | None) -> None:
    if not isinstance(message, Message):
        return
    try:
        await message.edit_text(body, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


# --- /status, /where, /who -------------------------------------------------------------------


async def status(update: Update, ctx: DarajaContext) -> None:
    """`/status` (the board, paged) or `/status UNIT` (its recent reports), for commanders in a
    private chat or the commanders' group."""
    call = await service_call(update, ctx, ctx.services.status)
    if call is None:
        return
    message, chat, caller, service, lang = call
    if not await _private_or_command(update, ctx):
        await answer(update, ctx, "status.private_or_command", lang)
        return
    args = (message.text or "").split()[1:]
    try:
        if args:
            pages = await service.unit_pages(caller.user_id, args[0], lang, chat.id)
            for page in pages:
                await message.reply_text(page, parse_mode=ParseMode.HTML)
            return
        pages = await service.board_pages(caller.user_id, lang, chat.id)
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    await message.reply_text(
        pages[0], parse_mode=ParseMode.HTML, reply_markup=_pager(0, len(pages))
    )


async def board_button(update: Update, ctx: DarajaContext) -> None:
    """◀ ▶ on the board (`board:<page>`): the page re-rendered with fresh data."""
    query = update.callback_query
    chat = update.effective_chat
    caller = caller_of(update, ctx)
    service = ctx.services.status
    if query is None or chat is None or caller is None or service is None:
        return
    identity = await ctx.services.enrollment.identity(caller)
    lang = await reply_language(update, ctx, identity)
    if identity.role not in (Role.COMMANDER, Role.ADMIN):
        await query.answer(
            text(ctx, "access.role_required", lang, command="status"), show_alert=True
        )
        return
    try:
        page = int((query.data or "board:0").split(":", 1)[1])
        pages = await service.board_pages(caller.user_id, lang, chat.id)
    except (ValueError, DarajaError):
        await query.answer()
        return
    page = max(0, min(page, len(pages) - 1))
    await query.answer()
    await _edit(query.message, pages[page], _pager(page, len(pages)))


def _pager(page: int, total: int) -> InlineKeyboardMarkup | None:
    if total <= 1:
        return None
    buttons = []
    if page > 0:
        buttons.append(InlineKeyboardButton("◀", callback_data=f"board:{page - 1}"))
    buttons.append(InlineKeyboardButton(f"{page + 1}/{total}", callback_data=f"board:{page}"))
    if page < total - 1:
        buttons.append(InlineKeyboardButton("▶", callback_data=f"board:{page + 1}"))
    return InlineKeyboardMarkup([buttons])


async def where(update: Update, ctx: DarajaContext) -> None:
    """`/where UNIT`: where the unit last reported from (private chat)."""
    call = await service_call(update, ctx, ctx.services.status)
    if call is None:
        return
    message, chat, caller, service, lang = call
    args = (message.text or "").split()[1:]
    if not args:
        await answer(update, ctx, "where.usage", lang)
        return
    try:
        line = await service.where(caller.user_id, args[0], lang, chat.id)
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    await message.reply_text(line, parse_mode=ParseMode.HTML)


async def who(update: Update, ctx: DarajaContext) -> None:
    """`/who`: the operation's units, their force and their groups' languages (private chat)."""
    call = await service_call(update, ctx, ctx.services.status)
    if call is None:
        return
    message, chat, caller, service, lang = call
    try:
        units = await service.who(caller.user_id, chat.id)
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    i18n = ctx.services.i18n
    lines = [text(ctx, "who.title", lang, count=len(units))]
    for unit in units:
        langs = ", ".join(i18n.t(f"lang.name.{x}", lang) for x in unit.languages)
        mark = "" if unit.has_chat else " · " + text(ctx, "who.no_group", lang)
        code, side = escape_html(unit.code), escape_html(unit.side)
        lines.append(f"<b>{code}</b> · {side} · {escape_html(langs)}{mark}")
    body = "\n".join(lines)
    for start in range(0, len(lines), 60):
        chunk = "\n".join(lines[start : start + 60]) if len(body) > 3800 else body
        await message.reply_text(chunk, parse_mode=ParseMode.HTML)
        if len(body) <= 3800:
            break


async def _private_or_command(update: Update, ctx: DarajaContext) -> bool:
    chat = update.effective_chat
    if chat is None:
        return False
    if chat.type == "private":
        return True
    enrolled = await ctx.services.enrollment.chat(chat.id)
    return enrolled is not None and enrolled.is_command
