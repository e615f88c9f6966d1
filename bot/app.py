"""The composition root: build services, wire handlers, run the bot (cf. rules-bot).

`serve()` is the bot's main loop: migrate the database, start the translation engine, resume
the durable inbox, then poll Telegram and run the outbox worker until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.context import DarajaContext, Services
from bot.delivery.http import AiohttpRequest, UpdatesRequest
from bot.delivery.ratelimit import TelegramRateLimiter
from bot.observability.telemetry import Telemetry
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.delivery.inbox import InboxProcessor
    from bot.delivery.notices import NoticeWorker
    from bot.delivery.outbox import OutboxWorker
    from bot.services.voice import VoiceService

log = logging.getLogger("daraja")

AnyApp = Application[Any, Any, Any, Any, Any, Any]


def build_services(settings: Settings, translator: Any = None) -> Services:
    """Create the database, audit chain, catalogs, translator and services (no I/O yet)."""
    from bot.i18n import load_i18n
    from bot.services.audit_access import AuditAccess
    from bot.services.enrollment import EnrollmentService
    from bot.services.limits import CodeLimits
    from bot.services.relay import RelayService
    from bot.services.revocation import RevocationService
    from bot.services.translator import NoModelsTranslator
    from storage.audit import AuditChain
    from storage.db import Database

    db = Database(settings.database_url)
    key = settings.audit_hmac_key.get_secret_value().encode() if settings.audit_hmac_key else None
    audit = AuditChain(key=key)
    translator = translator or NoModelsTranslator()
    i18n = load_i18n()
    # SITREPs, the status board and FLASH messages (their services are optional in Services).
    from datetime import timedelta

    from bot.services.flash import FlashService
    from bot.services.status import StatusService

    return Services(
        settings=settings,
        db=db,
        audit=audit,
        i18n=i18n,
        enrollment=EnrollmentService(
            db,
            audit,
            settings.admin_ids,
            limits=CodeLimits(
                max_failures=settings.code_max_failures,
                lockout=timedelta(minutes=settings.code_lockout_min),
            ),
            refusal_window=timedelta(minutes=settings.refusal_audit_window_min),
        ),
        translator=translator,
        relay=RelayService(db, audit, translator),
        audit_access=AuditAccess(db, audit),
        extra={},
        status=StatusService(db, audit, translator, i18n, admin_ids=settings.admin_ids),
        flash=FlashService(
            db,
            audit,
            translator,
            i18n,
            remind_after=timedelta(minutes=settings.flash_remind_min),
            escalate_after=timedelta(minutes=settings.flash_escalate_min),
        ),
        revocation=RevocationService(db, audit, settings.admin_ids),
    )


def register_handlers(app: AnyApp) -> None:
    """Register every handler, in an order that matters (see the comments)."""
    from handlers import admin, audit, console, enrollment, relay
    from handlers import flash as flash_handlers
    from handlers import status as status_handlers
    from handlers.errors import on_error
    from handlers.gate import gate

    # Group -1: the gate sees every update first. It drops bots' messages (no loops), follows
    # group -> supergroup migrations, stops unenrolled chats (one refusal) and commands the
    # caller's role may not run, so nothing below re-checks access.
    app.add_handler(TypeHandler(Update, gate), group=-1)

    # Group 0: commands, each name once.
    commands = {
        "start": enrollment.start,
        "help": enrollment.help_command,
        "enroll": enrollment.enroll,
        "backtranslate": enrollment.backtranslate,
        "join": enrollment.join,
        "lang": enrollment.lang_command,
        "whoami": enrollment.whoami,
        "newop": admin.new_operation,
        "addunit": admin.add_unit,
        "code": admin.issue_code,
        "revoke": admin.revoke,
        "how": relay.how,
        "log": audit.log_command,
        "search": audit.search_command,
        "console": console.console_command,
        # SITREPs, the board, FLASH messages.
        "report": status_handlers.report,
        "sitrep": status_handlers.report,
        "status": status_handlers.status,
        "where": status_handlers.where,
        "who": status_handlers.who,
        "flash": flash_handlers.flash,
        "acks": flash_handlers.acks,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback))
    # Inline buttons (SITREP steps, board pages, FLASH acknowledgements).
    app.add_handler(CallbackQueryHandler(status_handlers.report_button, pattern=r"^rep:"))
    app.add_handler(CallbackQueryHandler(status_handlers.board_button, pattern=r"^board:"))
    app.add_handler(CallbackQueryHandler(flash_handlers.ack_pressed, pattern=r"^ack:"))
    app.add_handler(MessageHandler(filters.StatusUpdate.NEW_CHAT_MEMBERS, enrollment.bot_added))
    app.add_handler(CallbackQueryHandler(audit.more, pattern=r"^audit:\d+$"))
    # Group 0, after commands: officers' messages in enrolled groups (commands never relay;
    # service messages are not matched). Edits re-translate and edit every copy.
    groups = filters.ChatType.GROUPS & ~filters.COMMAND & ~filters.StatusUpdate.ALL
    # An answer to its author's open SITREP question is taken by the wizard, before
    # the relay (it is not a message for the partner groups).
    services = app.bot_data.get("services")
    if services is not None and services.status is not None:
        app.add_handler(
            MessageHandler(
                groups
                & filters.UpdateType.MESSAGE
                & (filters.TEXT | filters.LOCATION)
                & status_handlers.DraftInput(services.status.drafts),
                status_handlers.report_input,
            )
        )
    app.add_handler(MessageHandler(groups & filters.UpdateType.MESSAGE, relay.relay_message))
    app.add_handler(
        MessageHandler(groups & filters.UpdateType.EDITED_MESSAGE, relay.relay_message)
    )
    # Group 0, last: private plain text is not relayed; say so.
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE
            & filters.TEXT
            & ~filters.COMMAND
            & filters.UpdateType.MESSAGE,
            enrollment.private_fallback,
        )
    )
    app.add_error_handler(on_error)


def build_limiter(settings: Settings) -> Any:
    """Telegram's sending limits from settings (one limiter for every request the bot makes)."""
    from bot.delivery.ratelimit import RateLimiter

    return RateLimiter(
        global_per_s=settings.rate_global_per_s,
        chat_per_s=settings.rate_chat_per_s,
        group_per_min=settings.rate_group_per_min,
    )


def build_application(settings: Settings, services: Services, limiter: Any) -> AnyApp:
    """Build the python-telegram-bot Application against the configured Bot API root."""
    token = settings.require_token()
    api = settings.telegram_api_url
    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .context_types(ContextTypes(context=DarajaContext))
        .request(
            AiohttpRequest(
                connection_pool_size=64,
                read_timeout=20,
                write_timeout=20,
                connect_timeout=10,
                pool_timeout=10,
            )
        )
        .get_updates_request(
            UpdatesRequest(connection_pool_size=1, read_timeout=40, connect_timeout=10)
        )
        .rate_limiter(TelegramRateLimiter(limiter))
        .updater(None)  # updates come through the durable inbox (bot/delivery/inbox.py)
        .concurrent_updates(True)
        .build()
    )
    app.bot_data["services"] = services
    register_handlers(app)
    return app


def build_translator(settings: Settings) -> Any:
    """The offline engine over the installed models, or None when there are none."""
    from bot.engines.translator import build_translator as build

    return build(settings)


@dataclass
class _Workers:
    """The long-running parts `serve` starts after the Bot API answers."""

    outbox: OutboxWorker
    notices: NoticeWorker
    voice: VoiceService
    inbox: InboxProcessor


async def serve(
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    telemetry: Telemetry | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run the bot until `stop` is set (or SIGINT/SIGTERM); `ready` is set once it polls.

    In order: the engine and services, the database migrated and locked against a restore,
    the metrics and console servers (up before Telegram is reached), the Bot API connection
    and command menus, the workers (outbox, notices, voice, inbox), the receiver, then the
    background tasks; on the way out they stop in the reverse order."""
    from bot.engines.translator import start_self_test
    from bot.engines.watch import ModelWatcher

    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    translator = await build_translator_async(settings)
    services = build_services(settings, translator)
    await services.db.upgrade()
    services.db.hold_run_lock()  # `daraja restore` will not overwrite it under us
    if settings.mode != "worker" and not await services.db.hold_receiver_lock():
        from bot.errors import ConfigError

        await services.db.dispose()
        raise ConfigError(
            "another Daraja is already receiving updates for this PostgreSQL database: stop "
            "it first (a host that died frees it within a minute); only one process may "
            "receive updates (extra delivery workers run with DARAJA_MODE=worker)"
        )
    limiter = build_limiter(settings)
    app = build_application(settings, services, limiter)
    # The metrics server (and its /healthz) runs before the Bot API is reached, so a field
    # link that is down at boot shows as "not connected yet" instead of as no process at all.
    metrics, telemetry = await _start_metrics(settings, services, telemetry)
    # The web console: links from /console whenever it has an address; served here when a
    # port is set (else by `daraja console` elsewhere).
    console = await _start_console(settings, services)
    if not await connect(app, settings, stop):
        log.info("stopped before the Bot API could be reached")
        await app.bot.shutdown()
        if metrics is not None:
            await metrics.stop()
        if console is not None:
            await console.stop()
        await services.db.dispose()
        return
    if metrics is not None:
        metrics.connecting = False
    log.info("bot @%s connected", app.bot.username)
    await _announce(app, settings, services)
    await app.start()
    self_test = start_self_test(translator)
    # Models installed or removed while the bot runs are picked up (periodically, on SIGHUP).
    watcher = ModelWatcher(services, interval=settings.models_check_seconds)
    watcher.install_signal()
    watch = asyncio.create_task(watcher.run(), name="models-watch")
    telemetry = telemetry or Telemetry()
    workers = await _start_workers(settings, services, app, limiter, telemetry)
    receive = await _receiver(settings, app, workers.inbox, telemetry, stop, metrics)
    # Everything loaded so far (models' vocabularies, catalogs, SQLAlchemy's mappers) lives as
    # long as the process: keep it out of the collector's full passes, which otherwise stopped
    # the event loop for ~100 ms each under a burst.
    gc.collect()
    gc.freeze()
    tasks = _start_tasks(settings, services, app, workers, receive)
    for s_attr in (services.status, services.flash):
        if s_attr is not None:
            s_attr.on_queued = workers.outbox.wake
            s_attr.on_notice = workers.notices.wake
    log.info("Daraja is running (%s mode)", settings.mode)
    if metrics is not None:
        metrics.ready = True  # /healthz answers 200 from now on
    if ready is not None:
        ready.set()
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        log.info("stopping")
        await _stop_tasks(tasks, workers)
        if self_test is not None:
            self_test.cancel()
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watch
        await app.stop()
        await app.shutdown()
        if metrics is not None:
            await metrics.stop()
        if console is not None:
            await console.stop()
        await services.db.dispose()


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop` (where the loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _start_metrics(
    settings: Settings, services: Services, telemetry: Telemetry | None
) -> tuple[Any, Telemetry | None]:
    """Serve /metrics and /healthz when a port is set; the telemetry then also feeds them."""
    if settings.metrics_port is None:
        return None, telemetry
    from bot.observability.metrics import MetricsServer, PrometheusTelemetry, Tee

    prometheus = PrometheusTelemetry(mode=settings.mode)
    metrics = MetricsServer(
        prometheus, services.db, host=settings.metrics_listen, port=settings.metrics_port
    )
    await metrics.start()
    metrics.connecting = True
    return metrics, Tee(prometheus, telemetry) if telemetry is not None else prometheus


async def _announce(app: AnyApp, settings: Settings, services: Services) -> None:
    """Tell Telegram how this process receives updates, and set the command menus."""
    from bot.delivery.command_menu import set_menus

    if settings.mode == "polling":
        # Only polling needs the webhook gone (Telegram refuses getUpdates while one is set);
        # webhook mode sets its own once its endpoint listens.
        with contextlib.suppress(Exception):
            await app.bot.delete_webhook(drop_pending_updates=False)
    # The command menu, per scope (private, groups, group admins, Daraja admins) and language.
    await set_menus(
        app.bot,
        services.i18n,
        default_language=settings.default_language,
        admin_ids=settings.admin_ids,
    )


async def _start_workers(
    settings: Settings, services: Services, app: AnyApp, limiter: Any, telemetry: Telemetry
) -> _Workers:
    """The outbox and notice workers, the voice queue and the inbox, with what a stop left
    half-done (SITREP wizards, voice notes, stored updates) picked up again."""
    from bot.delivery.inbox import InboxProcessor
    from bot.delivery.notices import NoticeWorker
    from bot.delivery.outbox import OutboxWorker
    from bot.services.copies import CopyBuilder

    outbox = OutboxWorker(
        services.db,
        services.audit,
        app.bot,
        CopyBuilder(services.db, services.i18n),
        limiter,
        telemetry=telemetry,
        lease=timedelta(seconds=settings.outbox_lease_seconds),
        concurrency=settings.outbox_concurrency,
        sole_deliverer=settings.database_url.startswith("sqlite"),
    )
    notices = NoticeWorker(
        services.db,
        services.audit,
        app.bot,
        limiter,
        lease=timedelta(seconds=settings.outbox_lease_seconds),
    )
    if services.status is not None:
        await services.status.drafts.load()  # SITREP wizards a restart interrupted
    services.relay.telemetry = telemetry
    services.relay.on_queued = outbox.wake
    voice = await build_voice(settings, services, app.bot)
    services.voice = voice
    if settings.mode != "worker":
        await voice.resume()  # notes whose transcript a stop interrupted
    services.extra["outbox"] = outbox
    inbox = InboxProcessor(
        services.db, app, concurrency=settings.inbox_concurrency, telemetry=telemetry
    )
    if settings.mode != "worker":
        await inbox.resume()
    return _Workers(outbox, notices, voice, inbox)


async def _receiver(
    settings: Settings,
    app: AnyApp,
    inbox: InboxProcessor,
    telemetry: Telemetry,
    stop: asyncio.Event,
    metrics: Any,
) -> Any:
    """The coroutine that receives updates: long polling or a webhook, both committing to the
    inbox first; a worker process receives nothing (it only delivers)."""
    from bot.delivery.inbox import Poller

    if settings.mode == "webhook":
        from bot.delivery.webhook import WebhookReceiver

        receiver = WebhookReceiver.from_settings(settings, inbox, telemetry)
        await receiver.start()  # listening before Telegram is told where to post
        try:
            await _unless_stopped(
                receiver.register(
                    app.bot,
                    allowed_updates=Update.ALL_TYPES,
                    retry_max=settings.telegram_retry_max_seconds,
                ),
                stop,
            )
        except BaseException:
            await receiver.stop()
            if metrics is not None:
                await metrics.stop()
            raise
        return receiver.serve_forever()
    if settings.mode == "worker":
        # A delivery-only process shares the outbox with the process that receives updates
        # (claims use SKIP LOCKED on PostgreSQL).
        return asyncio.Event().wait()
    poller = Poller(
        app.bot,
        inbox,
        timeout=settings.poll_timeout,
        allowed_updates=Update.ALL_TYPES,
        telemetry=telemetry,
        retry_max=settings.telegram_retry_max_seconds,
    )
    return poller.run()


# How often the receiving process checks that it still holds PostgreSQL's receiver lock.
RECEIVER_CHECK_SECONDS = 30.0


def _start_tasks(
    settings: Settings, services: Services, app: AnyApp, workers: _Workers, receive: Any
) -> list[asyncio.Task[Any]]:
    """The running tasks: receiver first and outbox second (`_stop_tasks` relies on it)."""
    sender = settings.mode != "worker"  # only the receiving process queues notices and checks
    tasks = [
        asyncio.create_task(receive, name="receiver"),
        asyncio.create_task(workers.outbox.run(), name="outbox"),
        # What the bot writes on its own (reminders, alerts, the "acknowledged" edit).
        # Only in the process that receives updates: it alone queues them.
        asyncio.create_task(
            workers.notices.run() if sender else asyncio.Event().wait(), name="notices"
        ),
        asyncio.create_task(workers.voice.run(), name="voice"),
        # Staleness alerts and FLASH reminders (kept last: cancelled with the rest).
        asyncio.create_task(
            _status_checks(services, app.bot) if sender else asyncio.Event().wait(),
            name="status-checks",
        ),
    ]
    if sender:
        # Content past its retention period is purged now and hourly (bot/services/retention.py).
        from bot.services.retention import policy_from, retention_loop

        retention = retention_loop(services.db, services.audit, policy_from(settings))
        tasks.append(asyncio.create_task(retention, name="retention"))
        if services.db.dialect != "sqlite":
            watch = _receiver_watch(services.db, RECEIVER_CHECK_SECONDS)
            tasks.append(asyncio.create_task(watch, name="receiver-lock"))
    return tasks


async def _receiver_watch(db: Any, interval: float) -> None:
    """Keep the PostgreSQL receiver lock: its connection is checked every `interval` seconds
    and, when it is gone (the server restarted), the lock is taken again. Said once per
    change: taken again (a warning), taken meanwhile by another process (an error: two may
    now be receiving), or the server unreachable (a warning; asked again)."""
    last = "held"
    while True:
        await asyncio.sleep(interval)
        state = await db.check_receiver_lock()
        if state == "retaken":
            log.warning(
                "receiver lock: its PostgreSQL connection was lost; the lock is held again"
            )
        elif state != last and state == "lost":
            log.error(
                "receiver lock: another Daraja took it while this one's connection was down; "
                "two processes may be receiving updates: stop one of them"
            )
        elif state != last and state == "unreachable":
            log.warning("receiver lock: PostgreSQL cannot be reached; checking again")
        last = "held" if state == "retaken" else state


async def _stop_tasks(tasks: list[asyncio.Task[Any]], workers: _Workers) -> None:
    """Stop receiving first, let the inbox finish what it holds (10 s at most), then stop the
    outbox and the rest."""
    tasks[0].cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await tasks[0]
    with contextlib.suppress(Exception):
        await asyncio.wait_for(workers.inbox.drain(), timeout=10)
    tasks[1].cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await tasks[1]
    for task in tasks[2:]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    workers.voice.close()


async def _start_console(settings: Settings, services: Services) -> Any:
    """Give /console its link service and address; serve the console if a port is set."""
    from bot.console.server import ConsoleServer, build_auth, build_deps, console_url

    url = console_url(settings)
    if url is None:
        return None
    auth = build_auth(services)
    services.extra["console_auth"] = auth
    services.extra["console_url"] = url
    if settings.console_port is None:
        return None
    server = ConsoleServer(
        build_deps(services, auth), host=settings.console_listen, port=settings.console_port
    )
    await server.start()
    return server


async def build_voice(settings: Settings, services: Services, bot: Any) -> VoiceService:
    """The voice-note queue: its transcriber loads off the event loop; the audio comes from
    the Bot API's getFile."""
    from bot.engines.voice import build_transcriber
    from bot.services.voice import VoiceService

    transcriber = await asyncio.to_thread(build_transcriber, settings)

    async def fetch(file_id: str) -> bytes:
        file = await bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())

    return VoiceService(
        services.relay,
        transcriber,
        fetch,
        queue_size=settings.voice_queue_size,
        max_seconds=settings.voice_max_seconds,
    )


async def connect(app: AnyApp, settings: Settings, stop: asyncio.Event) -> bool:
    """Reach the Bot API (getMe), retrying with backoff while it is unreachable; False when
    `stop` was set first. A rejected token is not retried (it will not heal by waiting)."""
    from urllib.parse import urlsplit

    from telegram.error import NetworkError, RetryAfter

    from bot.delivery.ratelimit import retry_seconds
    from bot.delivery.reconnect import Backoff

    backoff = Backoff(settings.telegram_retry_max_seconds)
    host = urlsplit(settings.telegram_api_url).netloc or settings.telegram_api_url
    while not stop.is_set():
        try:
            await app.initialize()
        except RetryAfter as exc:
            wait = retry_seconds(exc.retry_after)
        except NetworkError as exc:  # TimedOut included
            why = type(exc).__name__
            wait = backoff.failed(f"the Bot API at {host} cannot be reached ({why})")
        else:
            backoff.succeeded(f"the Bot API at {host}")
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
    return False


async def _unless_stopped(work: Any, stop: asyncio.Event) -> None:
    """Await `work` unless `stop` is set first (then it is cancelled and this returns)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.done() and not task.cancelled():
        task.result()


async def _status_checks(services: Services, bot: Any) -> None:
    """Every `status_check_seconds`, alert commanders of reporting lapses and remind
    or escalate unacknowledged FLASHes (the rules live in the services, driven by the time)."""
    from storage.models import utcnow

    while True:
        await asyncio.sleep(services.settings.status_check_seconds)
        try:
            now = utcnow()
            if services.status is not None:
                await services.status.check_staleness(now)
            if services.flash is not None:
                await services.flash.check_flash_reminders(now)
            # Refused attempts counted in windows that are over become their audit events.
            await services.enrollment.flush_refusals()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("status checks failed; retrying at the next tick")


async def build_translator_async(settings: Settings) -> Any:
    """Build the translator off the event loop; load the language classifier now, so the
    first message after a start is not the one that waits for it (about half a second)."""
    try:
        translator = await asyncio.to_thread(build_translator, settings)
    except ImportError:
        return None
    if translator is not None:
        from translation.langid import warm_up

        await asyncio.to_thread(warm_up)
    return translator


def run(settings: Settings) -> None:
    """Run the bot until interrupted."""
    asyncio.run(serve(settings))
