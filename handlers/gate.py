"""The gate (handler group -1): unenrolled chats and unauthorised commands stop here.

Runs before every other handler. A group that is not enrolled gets one short refusal (ever:
the memory is in the database) and no further processing, each attempt audited in aggregate;
a command the caller's role may not run is refused and audited.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import DarajaContext
from bot.services.access import OPEN_COMMANDS, PRIVATE_ONLY, may_run
from bot.services.enrollment import Caller
from handlers.common import answer, caller_of, reply_language, text


def command_of(update: Update) -> str | None:
    """The command name of a message (`/Help@DarajaBot args` -> `help`), if it is one."""
    message = update.effective_message
    if message is None or not message.text or not message.text.startswith("/"):
        return None
    head = message.text.split(maxsplit=1)[0][1:]
    name = head.split("@", 1)[0].lower()
    return name or None


async def gate(update: Update, ctx: DarajaContext) -> None:
    """Stop updates from unenrolled chats and commands the caller may not run."""
    chat = update.effective_chat
    if chat is None or update.effective_message is None:
        return
    user = update.effective_user
    # Never react to bots; our own id is checked too, since `is_bot` is only what the update
    # claims (a forged or mangled update must not make the bot answer or relay itself).
    if user is not None and (user.is_bot or user.id == ctx.bot.id):
        raise ApplicationHandlerStop
    services = ctx.services
    command = command_of(update)
    caller = caller_of(update, ctx)
    if chat.type in ("group", "supergroup"):
        migrate_to = update.effective_message.migrate_to_chat_id
        if migrate_to:
            await services.enrollment.migrate_chat(chat.id, migrate_to)
            raise ApplicationHandlerStop
        if not await services.enrollment.enrolled(chat.id):
            if command == "enroll":
                return
            if command is None and update.effective_message.new_chat_members:
                return  # the bot was added: the welcome handler explains /enroll
            # Every attempt is audited (in aggregate); only the first one is answered.
            if await services.enrollment.refuse_unenrolled(caller, chat.id, command):
                lang = await reply_language(update, ctx)
                await answer(update, ctx, "access.chat_not_enrolled", lang)
            raise ApplicationHandlerStop
    if caller is not None and await _revoked(update, ctx, caller, command):
        raise ApplicationHandlerStop
    if command is None or command in OPEN_COMMANDS:
        return
    if caller is None:
        raise ApplicationHandlerStop
    identity = await services.enrollment.identity(caller)
    lang = await reply_language(update, ctx, identity)
    if not may_run(command, identity.role):
        await services.enrollment.record_refusal(caller, "role", chat_id=chat.id, command=command)
        key = "access.not_enrolled" if identity.role is None else "access.role_required"
        await answer(update, ctx, key, lang, command=command)
        raise ApplicationHandlerStop
    if command in PRIVATE_ONLY and chat.type != "private":
        await answer(update, ctx, "access.private_only", lang, command=command)
        raise ApplicationHandlerStop


async def _revoked(
    update: Update, ctx: DarajaContext, caller: Caller, command: str | None
) -> bool:
    """Refuse everything a revoked person sends (audited each time, never relayed).

    In a private chat every refusal is answered; in a group only the first one per person and
    chat (per process), so a captured phone cannot make the bot flood a unit's group. A button
    press gets its answer as a notice only that person sees."""
    revocation = ctx.services.revocation
    if revocation is None or caller.is_admin or not await revocation.is_revoked(caller.user_id):
        return False
    chat = update.effective_chat
    assert chat is not None
    await ctx.services.enrollment.record_refusal(
        caller, "person.revoked", chat_id=chat.id, command=command
    )
    lang = await reply_language(update, ctx)
    if update.callback_query is not None:
        await update.callback_query.answer(text(ctx, "access.revoked", lang), show_alert=True)
    elif chat.type == "private" or revocation.told.first_time(hash((chat.id, caller.user_id))):
        await answer(update, ctx, "access.revoked", lang)
    return True
