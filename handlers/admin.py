"""Admin bot commands (private chat): /newop, /addunit, /code."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update

from bot.context import DarajaContext
from bot.errors import DarajaError, UserInputError
from handlers.common import answer, caller_of, reply_language


async def new_operation(update: Update, ctx: DarajaContext) -> None:
    """/newop NAME [LANG] [TZ]: create an operation."""
    caller = caller_of(update, ctx)
    if caller is None:
        return
    lang = await reply_language(update, ctx)
    args = ctx.args or []
    if not 1 <= len(args) <= 3:
        await answer(update, ctx, "admin.newop_usage", lang)
        return
    try:
        op = await ctx.services.enrollment.create_operation(
            caller,
            args[0],
            default_language=(args[1] if len(args) > 1 else "en").lower(),
            timezone=args[2] if len(args) > 2 else ctx.services.settings.timezone,
        )
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    await answer(update, ctx, "admin.newop_ok", lang, operation=op.name)


async def add_unit(update: Update, ctx: DarajaContext) -> None:
    """/addunit OPERATION CODE PNH|MSS LANG [NAME…]: add a unit."""
    caller = caller_of(update, ctx)
    if caller is None:
        return
    lang = await reply_language(update, ctx)
    args = ctx.args or []
    if len(args) < 4:
        await answer(update, ctx, "admin.addunit_usage", lang)
        return
    try:
        unit = await ctx.services.enrollment.add_unit(
            caller,
            args[0],
            args[1],
            side=args[2],
            language=args[3].lower(),
            name=" ".join(args[4:]) or args[1],
        )
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    await answer(update, ctx, "admin.addunit_ok", lang, unit=unit.code, operation=args[0])


async def issue_code(update: Update, ctx: DarajaContext) -> None:
    """/code chat OPERATION UNIT|command [LANGS] | /code person OPERATION UNIT ROLE [LANG]."""
    caller = caller_of(update, ctx)
    if caller is None:
        return
    lang = await reply_language(update, ctx)
    args = ctx.args or []
    try:
        if len(args) >= 3 and args[0] == "chat":
            is_command = args[2].lower() == "command"
            issued = await ctx.services.enrollment.issue_code(
                caller,
                args[1],
                kind="chat",
                unit=None if is_command else args[2],
                languages=args[3] if len(args) > 3 else "",
                is_command=is_command,
            )
        elif len(args) >= 4 and args[0] == "person":
            issued = await ctx.services.enrollment.issue_code(
                caller,
                args[1],
                kind="person",
                unit=args[2],
                role=args[3],
                languages=args[4] if len(args) > 4 else "",
            )
        else:
            raise UserInputError("usage", key="admin.code_usage")
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)
        return
    hours = int((issued.expires_at - ctx.services.enrollment.clock()) / timedelta(hours=1))
    await answer(
        update,
        ctx,
        "admin.code_ok",
        lang,
        code=issued.code,
        hours=max(hours, 1),
        command="/enroll" if issued.kind == "chat" else "/join",
    )


async def revoke(update: Update, ctx: DarajaContext) -> None:
    """/revoke person USER_ID | code ID|CODE | chat CHAT_ID | unit OPERATION UNIT: cut off now."""
    caller = caller_of(update, ctx)
    service = ctx.services.revocation
    if caller is None or service is None:
        return
    lang = await reply_language(update, ctx)
    args = ctx.args or []
    target = args[0].lower() if args else ""
    try:
        if target == "person" and len(args) == 2 and _is_int(args[1]):
            person = await service.revoke_person(caller, int(args[1]))
            await answer(update, ctx, "revoke.person_ok", lang, user=person.user_id)
        elif target == "code" and len(args) == 2:
            code = await service.revoke_code(caller, args[1])
            await answer(update, ctx, "revoke.code_ok", lang, code=code.id)
        elif target == "chat" and len(args) == 2 and _is_int(args[1]):
            chat = await service.revoke_chat(caller, int(args[1]))
            await answer(update, ctx, "revoke.chat_ok", lang, chat=chat.chat_id)
        elif target == "unit" and len(args) == 3:
            retired = await service.retire_unit(caller, args[1], args[2])
            await answer(
                update,
                ctx,
                "revoke.unit_ok",
                lang,
                unit=retired.unit,
                chats=len(retired.chats),
                codes=retired.codes,
                people=retired.people,
            )
        else:
            raise UserInputError("usage", key="revoke.usage")
    except DarajaError as exc:
        await answer(update, ctx, exc.key, lang, **exc.params)


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()
