"""The composition root: build services, wire handlers, run the bot (cf. rules-bot)."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.context import DarajaContext, Services
from bot.settings import Settings

log = logging.getLogger("daraja")


def build_services(settings: Settings) -> Services:
    """Create the database, audit chain, catalogs and services (no I/O yet)."""
    from bot.i18n import load_i18n
    from bot.services.access import RefusalMemory
    from bot.services.enrollment import EnrollmentService
    from storage.audit import AuditChain
    from storage.db import Database

    db = Database(settings.database_url)
    key = settings.audit_hmac_key.get_secret_value().encode() if settings.audit_hmac_key else None
    audit = AuditChain(key=key)
    return Services(
        settings=settings,
        db=db,
        audit=audit,
        i18n=load_i18n(),
        enrollment=EnrollmentService(db, audit, settings.admin_ids),
        refusals=RefusalMemory(),
        extra={},
    )


def register_handlers(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Register every handler, in an order that matters (see the comments)."""
    from handlers import admin, enrollment
    from handlers.errors import on_error
    from handlers.gate import gate

    # Group -1: the gate sees every update first; it stops unenrolled chats and commands the
    # caller's role may not run, so nothing below needs to re-check access.
    app.add_handler(TypeHandler(Update, gate), group=-1)

    # Group 0: commands. Each command name appears once.
    commands = {
        "start": enrollment.start,
        "help": enrollment.help_command,
        "enroll": enrollment.enroll,
        "join": enrollment.join,
        "lang": enrollment.lang_command,
        "whoami": enrollment.whoami,
        "newop": admin.new_operation,
        "addunit": admin.add_unit,
        "code": admin.issue_code,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback))
    app.add_handler(MessageHandler(filters.StatusUpdate.NEW_CHAT_MEMBERS, enrollment.bot_added))
    # Group 0, last: private plain text is not relayed; say so.
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND,
            enrollment.private_fallback,
        )
    )
    app.add_error_handler(on_error)  # type: ignore[arg-type]


def build_application(settings: Settings) -> Application[Any, Any, Any, Any, Any, Any]:
    """Build the python-telegram-bot Application against the configured Bot API root."""
    token = settings.require_token()
    services = build_services(settings)
    api = settings.telegram_api_url
    context_types = ContextTypes(context=DarajaContext)

    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await services.db.upgrade()
        me = app.bot
        log.info("bot @%s ready (api %s)", me.username, _redacted(api))
        await app.bot.set_my_commands(
            [
                BotCommand(name, services.i18n.t(f"help.{name}", "en")[:256])
                for name in ("help", "whoami", "lang", "join", "enroll")
            ]
        )

    async def post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await services.db.dispose()

    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .context_types(context_types)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(False)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    app.bot_data["services"] = services
    register_handlers(app)
    return app


def _redacted(url: str) -> str:
    return url.split("?", 1)[0]


def run(settings: Settings) -> None:
    """Run the bot until interrupted."""
    app = build_application(settings)
    app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
