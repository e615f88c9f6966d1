"""Commands anyone may use: /start, /help, /enroll, /backtranslate, /join, /lang, /whoami."""

from __future__ import annotations

from telegram import Update

from bot.context import DarajaContext
from bot.domain import LANGUAGES, Role
from bot.errors import DarajaError, TooManyAttempts
from bot.i18n import KEY_FAMILIES
from bot.services.access import COMMAND_ROLES
from handlers.common import answer, caller_of, reply_language, text

# Order of commands in /help (the catalog's `help.*` family, minus /help and /start themselves);
# each is shown only to roles that may run it.
HELP_ORDER = tuple(c for c in KEY_FAMILIES["help.{}"] if c not in ("help", "start"))


async def start(update: Update, ctx: DarajaContext) -> None:
    """/start: greet and point to /help or /join."""
    lang = await reply_language(update, ctx)
    await answer(update, ctx, "start.welcome", lang)


async def help_command(update: Update, ctx: DarajaContext) -> None:
    """/help: what this person's role can do, in their language."""
    caller = caller_of(update, ctx)
    if caller is None:
        return
    identity = await ctx.services.enrollment.identity(caller)
    lang = await reply_language(update, ctx, identity)
    role = identity.role
    lines = [text(ctx, "help.header", lang)]
    for command in HELP_ORDER:
        allowed = COMMAND_ROLES.get(command)
        if (
            allowed is not None
            and role is not Role.ADMIN
            and (role is None or role not in allowed)
        ):
            continue
        lines.append(f"/{command} — {text(ctx, f'help.{command}', lang)}")
    if role is None:
        lines.append("")
        lines.append(text(ctx, "access.not_enrolled", lang))
    message = update.effective_message
    if message is not None:
        await message.reply_text("\n".join(lines), parse_mode="HTML")


async def enroll(update: Update, ctx: DarajaContext) -> None:
    """/enroll CODE in a group: bind the group to the code's unit (group admins only)."""
    caller = caller_of(update, ctx)
    chat = update.effective_chat
    if caller is None or chat is None:
        return
    lang = await reply_language(update, ctx)
    if len(ctx.args or []) != 1:
        await answer(update, ctx, "enroll.usage", lang)
        return
    is_chat_admin = False
    if chat.type in ("group", "supergroup"):
        member = await ctx.bot.get_chat_member(chat.id, caller.user_id)
        is_chat_admin = member.status in ("creator", "administrator")
    try:
        result = await ctx.services.enrollment.enroll_chat(
            caller,
            (ctx.args or [""])[0],
            chat_id=chat.id,
            chat_title=chat.title or "",
            chat_type=chat.type,
            caller_is_chat_admin=is_chat_admin,
        )
    except DarajaError as exc:
        await _refused(update, ctx, exc, lang)
        return
    lang = result.languages[0]
    languages = ", ".join(text(ctx, f"lang.name.{code}", lang) for code in result.languages)
    if result.is_command:
        await answer(
            update, ctx, "enroll.ok_command", lang, operation=result.operation, languages=languages
        )
    else:
        await answer(
            update,
            ctx,
            "enroll.ok",
            lang,
            operation=result.operation,
            unit=result.unit or "",
            languages=languages,
        )


async def _refused(update: Update, ctx: DarajaContext, exc: DarajaError, lang: str) -> None:
    """Say why a code was refused; during a lockout only now and then (the rest are counted)."""
    if isinstance(exc, TooManyAttempts) and not exc.notify:
        return
    await answer(update, ctx, exc.key, lang, **exc.params)


# What `/backtranslate` accepts.
SWITCH = {"on": True, "off": False}


async def backtranslate(update: Update, ctx: DarajaContext) -> None:
    """/backtranslate [on|off] in an enrolled group: show or set whether each sender gets a
    back-translation of what partner groups read (group admins change it)."""
    caller = caller_of(update, ctx)
    chat = update.effective_chat
    if caller is None or chat is None:
        return
    lang = await reply_language(update, ctx)
    enrolled = (
        await ctx.services.enrollment.chat(chat.id)
        if chat.type in ("group", "supergroup")
        else None
    )
    if enrolled is None:
        await answer(update, ctx, "backtranslate.only_groups", lang)
        return
    args = ctx.args or []
    if not args:
        key = "backtranslate.is_on" if enrolled.back_translate else "backtranslate.is_off"
        await answer(update, ctx, key, lang)
        return
    enabled = SWITCH.get(args[0].lower()) if len(args) == 1 else None
    if enabled is None:
        await answer(update, ctx, "backtranslate.usage", lang)
        return
    member = await ctx.bot.get_chat_member(chat.id, caller.user_id)
    try:
        enabled = await ctx.services.enrollment.set_back_translate(
            caller,
            chat_id=chat.id,
            enabled=enabled,
            caller_is_chat_admin=member.status in ("creator", "administrator"),
        )
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    await answer(update, ctx, "backtranslate.on" if enabled else "backtranslate.off", lang)


async def join(update: Update, ctx: DarajaContext) -> None:
    """/join CODE in a private chat: take the code's role, unit and language."""
    caller = caller_of(update, ctx)
    chat = update.effective_chat
    if caller is None or chat is None:
        return
    lang = await reply_language(update, ctx)
    if len(ctx.args or []) != 1:
        await answer(update, ctx, "join.usage", lang)
        return
    try:
        who = await ctx.services.enrollment.join(
            caller, (ctx.args or [""])[0], chat_type=chat.type
        )
    except DarajaError as exc:
        await _refused(update, ctx, exc, lang)
        return
    lang = who.language or lang
    details = {
        "name": caller.display_name,
        "role": text(ctx, f"role.{who.role.value}", lang) if who.role else "",
        "operation": who.operation or "",
        "language": text(ctx, f"lang.name.{lang}", lang),
    }
    # A code without a unit (an auditor or commander of the whole operation) has its own
    # sentence: "of unit -" reads as a broken welcome.
    if who.unit:
        await answer(update, ctx, "join.ok", lang, unit=who.unit, **details)
    else:
        await answer(update, ctx, "join.ok_no_unit", lang, **details)


async def lang_command(update: Update, ctx: DarajaContext) -> None:
    """/lang [ht|fr|en|sw]: show or set the language this person reads in private chats."""
    caller = caller_of(update, ctx)
    if caller is None:
        return
    args = ctx.args or []
    current = await reply_language(update, ctx)
    if not args:
        await answer(
            update,
            ctx,
            "lang.usage",
            current,
            current=text(ctx, f"lang.name.{current}", current),
            choices=" | ".join(LANGUAGES),
        )
        return
    try:
        chosen = await ctx.services.enrollment.set_language(caller, args[0])
    except DarajaError as exc:
        await answer(update, ctx, exc.key, current, **exc.params)
        return
    # In a group the group's language still governs what is posted there.
    await answer(update, ctx, "lang.ok", chosen, language=text(ctx, f"lang.name.{chosen}", chosen))


async def whoami(update: Update, ctx: DarajaContext) -> None:
    """/whoami: role, unit, operation and language as Daraja knows them."""
    caller = caller_of(update, ctx)
    if caller is None:
        return
    who = await ctx.services.enrollment.identity(caller)
    lang = await reply_language(update, ctx, who)
    if who.role is None:
        await answer(update, ctx, "access.not_enrolled", lang)
        return
    details = {
        "name": caller.display_name,
        "role": text(ctx, f"role.{who.role.value}", lang),
        "language": text(ctx, f"lang.name.{who.language or lang}", lang),
    }
    # People without a unit, and admins named in settings without an operation, get their own
    # sentences instead of "unit -".
    if who.operation is None:
        await answer(update, ctx, "whoami.enrolled_no_operation", lang, **details)
    elif who.unit is None:
        await answer(
            update, ctx, "whoami.enrolled_no_unit", lang, operation=who.operation, **details
        )
    else:
        await answer(
            update,
            ctx,
            "whoami.enrolled",
            lang,
            unit=who.unit,
            operation=who.operation,
            **details,
        )


async def private_fallback(update: Update, ctx: DarajaContext) -> None:
    """Plain text in a private chat is not relayed: say so and point to /help."""
    caller = caller_of(update, ctx)
    if caller is None:
        return
    who = await ctx.services.enrollment.identity(caller)
    lang = await reply_language(update, ctx, who)
    await answer(
        update, ctx, "access.not_enrolled" if who.role is None else "private.no_relay", lang
    )


async def bot_added(update: Update, ctx: DarajaContext) -> None:
    """The bot joined a group: explain how to enroll it."""
    message = update.effective_message
    if message is None or not message.new_chat_members:
        return
    if not any(member.id == ctx.bot.id for member in message.new_chat_members):
        return
    chat = update.effective_chat
    if chat is None or await ctx.services.enrollment.chat(chat.id) is not None:
        return
    # This explanation is the chat's one refusal: later messages get no further answer. It is
    # given each time the bot is added (a group that removed and re-added it asks again).
    await ctx.services.enrollment.tell_unenrolled(chat.id)
    lang = await reply_language(update, ctx)
    await answer(update, ctx, "access.chat_not_enrolled", lang)
