"""Small helpers shared by handlers: who is calling, which language to answer in, replying."""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, TypeVar

from telegram import Chat, Message, Update
from telegram.constants import ParseMode

from bot.context import DarajaContext
from bot.domain import escape_html
from bot.i18n import choose_language
from bot.services.enrollment import Caller, Identity

S = TypeVar("S")


class ServiceCall(NamedTuple, Generic[S]):
    """What a command handler built on one service starts from."""

    message: Message
    chat: Chat
    caller: Caller
    service: S
    lang: str


async def service_call(
    update: Update, ctx: DarajaContext, service: S | None
) -> ServiceCall[S] | None:
    """The message, chat, caller, service and reply language of a command; None (nothing to
    answer) for updates without them or when the service is not configured."""
    message = update.effective_message
    chat = update.effective_chat
    caller = caller_of(update, ctx)
    if message is None or chat is None or caller is None or service is None:
        return None
    return ServiceCall(message, chat, caller, service, await reply_language(update, ctx))


def caller_of(update: Update, ctx: DarajaContext) -> Caller | None:
    """The person behind an update, or None for channel posts and anonymous admins."""
    user = update.effective_user
    if user is None or user.is_bot:
        return None
    return Caller(
        user_id=user.id,
        display_name=user.full_name or (user.username or str(user.id)),
        is_admin=ctx.services.enrollment.is_admin(user.id),
        telegram_language=(user.language_code or "")[:2].lower() or None,
    )


async def reply_language(
    update: Update, ctx: DarajaContext, identity: Identity | None = None
) -> str:
    """Group language in groups; the person's language in private chats; then fallbacks."""
    chat = update.effective_chat
    if chat is not None and chat.type in ("group", "supergroup"):
        enrolled = await ctx.services.enrollment.chat(chat.id)
        if enrolled is not None and enrolled.language_list:
            # In a group the group's language wins: no need to look the person up.
            return choose_language(
                chat_languages=enrolled.language_list,
                person_language=None,
                operation_language=None,
                telegram_language=None,
                default=ctx.services.settings.default_language,
            )
    caller = caller_of(update, ctx)
    if identity is None and caller is not None:
        identity = await ctx.services.enrollment.identity(caller)
    return choose_language(
        chat_languages=None,
        person_language=identity.language if identity is not None else None,
        # Identity does not carry the operation's default yet; the deployment's is `default`.
        operation_language=None,
        telegram_language=caller.telegram_language if caller is not None else None,
        default=ctx.services.settings.default_language,
    )


def text(ctx: DarajaContext, key: str, lang: str, /, **params: Any) -> str:
    """Catalog text with every parameter HTML-escaped (catalog text itself is trusted)."""
    safe = {k: escape_html(v) for k, v in params.items()}
    return ctx.services.i18n.t(key, lang, **safe)


async def answer(
    update: Update, ctx: DarajaContext, key: str, lang: str, /, **params: Any
) -> None:
    """Reply to the update's message with catalog text (parameters may be named `lang`)."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        text(ctx, key, lang, **params),
        parse_mode=ParseMode.HTML,
        do_quote=update.effective_chat is not None and update.effective_chat.type != "private",
    )
