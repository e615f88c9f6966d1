"""Auditors' commands in a private chat: /log and /search, paged with a "More" button."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from bot.context import DarajaContext
from bot.domain import escape_html
from bot.errors import DarajaError
from bot.rendering.copies import pack, split_text
from bot.services.audit_access import LogPage
from handlers.common import answer, caller_of, reply_language, text

PAGE_STATE = "audit_pages"  # user_data key: message id of a page -> the query behind it
MAX_REMEMBERED = 20
ORIGINAL_LIMIT = 1200


async def log_command(update: Update, ctx: DarajaContext) -> None:
    """/log [unit|chat] [since] [until]."""
    await _run(update, ctx, ("log", tuple(ctx.args or ())), cursor=None)


async def search_command(update: Update, ctx: DarajaContext) -> None:
    """/search TEXT."""
    query = " ".join(ctx.args or ())
    if not query:
        lang = await reply_language(update, ctx)
        await answer(update, ctx, "audit.usage_search", lang)
        return
    await _run(update, ctx, ("search", (query,)), cursor=None)


async def more(update: Update, ctx: DarajaContext) -> None:
    """The "More" button under a page: the next page of the same query."""
    query = update.callback_query
    if query is None or query.message is None or not query.data:
        return
    pages: dict[int, Any] = (ctx.user_data or {}).get(PAGE_STATE, {})
    remembered = pages.get(query.message.message_id)
    lang = await reply_language(update, ctx)
    if remembered is None:
        await query.answer(text(ctx, "audit.expired", lang), show_alert=True)
        return
    await query.answer()
    cursor = int(query.data.split(":", 1)[1])
    await _run(update, ctx, remembered, cursor=cursor)


async def _run(
    update: Update, ctx: DarajaContext, request: tuple[str, tuple[str, ...]], *, cursor: int | None
) -> None:
    caller = caller_of(update, ctx)
    chat = update.effective_chat
    if caller is None or chat is None:
        return
    lang = await reply_language(update, ctx)
    access = ctx.services.audit_access
    kind, args = request
    try:
        if kind == "log":
            page = await access.log(caller, chat_type=chat.type, args=args, cursor=cursor)
        else:
            page = await access.search(caller, chat_type=chat.type, text=args[0], cursor=cursor)
    except DarajaError as exc:
        await ctx.bot.send_message(
            chat.id, text(ctx, exc.key, lang, **exc.params), parse_mode=ParseMode.HTML
        )
        return
    await _send_page(ctx, chat.id, page, lang, request)


def _figure(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


async def _send_page(
    ctx: DarajaContext,
    chat_id: int,
    page: LogPage,
    lang: str,
    request: tuple[str, tuple[str, ...]],
) -> None:
    if not page.entries:
        await ctx.bot.send_message(chat_id, text(ctx, "audit.no_results", lang))
        return
    i18n = ctx.services.i18n
    pieces: list[str] = []
    for entry in page.entries:
        language = i18n.t(f"lang.name.{entry.language}", lang) if entry.language else "?"
        pieces.append(
            text(
                ctx,
                "audit.entry",
                lang,
                id=entry.message_id,
                time=entry.at.strftime("%Y-%m-%d %H:%M UTC"),
                unit=entry.unit or "-",
                chat=entry.chat_title,
                author=entry.author_name,
                language=language,
            )
        )
        if entry.speech is not None:
            pieces.append(
                text(
                    ctx,
                    "audit.transcript",
                    lang,
                    status=entry.speech.get("status") or "-",
                    model=entry.speech.get("model") or "-",
                    logprob=_figure(entry.speech.get("avg_logprob")),
                    ratio=_figure(entry.speech.get("compression_ratio")),
                )
            )
        if entry.purged_at is not None:
            pieces.append(_purged(ctx, lang, entry.purged_at))
        else:
            for chunk in split_text(entry.original, ORIGINAL_LIMIT)[:1]:
                pieces.append(f"<blockquote>{escape_html(chunk)}</blockquote>")
        for tr in entry.translations:
            delivered = sum(1 for d in tr.deliveries if d.state == "sent")
            pieces.append(
                text(
                    ctx,
                    "audit.received",
                    lang,
                    language=" → ".join(
                        # A sender's back-translation check is keyed `en>ht` (source>target).
                        i18n.t(f"lang.name.{code}", lang)
                        for code in tr.language.split(">")
                    ),
                    route=i18n.t(f"relay.route.{tr.route}", lang),
                    delivered=delivered,
                    total=len(tr.deliveries),
                )
            )
            if tr.purged_at is not None:
                # Said once per message when the original went with its translations.
                if entry.purged_at is None:
                    pieces.append(_purged(ctx, lang, tr.purged_at))
                continue
            for chunk in split_text(tr.text, ORIGINAL_LIMIT)[:1]:
                pieces.append(f"<blockquote>{escape_html(chunk)}</blockquote>")
        pieces.append("")
    messages = pack(pieces)
    for index, body in enumerate(messages):
        last = index == len(messages) - 1
        markup = None
        if last and page.next_cursor is not None:
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            text(ctx, "audit.more", lang),
                            callback_data=f"audit:{page.next_cursor}",
                        )
                    ]
                ]
            )
        sent = await ctx.bot.send_message(
            chat_id, body, parse_mode=ParseMode.HTML, reply_markup=markup
        )
        if markup is not None and ctx.user_data is not None:
            pages = ctx.user_data.setdefault(PAGE_STATE, {})
            pages[sent.message_id] = request
            while len(pages) > MAX_REMEMBERED:
                pages.pop(next(iter(pages)))


def _purged(ctx: DarajaContext, lang: str, at: Any) -> str:
    """The line standing for a body retention removed (when it went, in the reader's text)."""
    return f"<i>{text(ctx, 'audit.purged', lang, date=at.strftime('%Y-%m-%d'))}</i>"
