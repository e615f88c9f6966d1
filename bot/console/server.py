"""Serving the console: from the bot process (`DARAJA_CONSOLE_PORT`) or on its own with
`daraja console`; both build the same application over the deployment's services."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.console.sessions import ConsoleAuth
from bot.observability.metrics import bound_port, listen

if TYPE_CHECKING:
    from bot.console.web import ConsoleDeps
    from bot.context import Services
    from bot.settings import Settings

log = logging.getLogger("daraja.console")


def console_url(settings: Settings, port: int | None = None) -> str | None:
    """The address people open: the setting, else the local listener; None when off."""
    if settings.console_url:
        return settings.console_url.rstrip("/")
    chosen = port if port is not None else settings.console_port
    if chosen is None:
        return None
    host = settings.console_listen
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{chosen}"


def build_auth(services: Services) -> ConsoleAuth:
    """Links and sessions over the deployment's database and audit chain."""
    settings = services.settings
    return ConsoleAuth(
        services.db,
        services.audit,
        admin_ids=settings.admin_ids,
        link_ttl=timedelta(minutes=settings.console_link_minutes),
        session_ttl=timedelta(minutes=settings.console_session_minutes),
        default_language=settings.default_language,
    )


def build_deps(services: Services, auth: ConsoleAuth | None = None) -> ConsoleDeps:
    """The console's dependencies, taken from the bot's services."""
    from bot.console.queries import ConsoleQueries
    from bot.console.web import ConsoleDeps

    settings = services.settings
    url = console_url(settings) or ""
    return ConsoleDeps(
        auth=auth or build_auth(services),
        queries=ConsoleQueries(services.db, services.audit_access),
        i18n=services.i18n,
        db=services.db,
        chain=services.audit,
        status=services.status,
        revocation=services.revocation,
        models_dir=settings.models_dir,
        timezone=settings.timezone,
        default_language=settings.default_language,
        secure_cookie=url.startswith("https://"),
    )


class ConsoleServer:
    """The console's listener (127.0.0.1 unless told otherwise)."""

    def __init__(self, deps: ConsoleDeps, *, host: str, port: int) -> None:
        self.deps = deps
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def bound_port(self) -> int:
        """The port actually listened on (differs from `port` when it was 0)."""
        return bound_port(self._runner, self.port)

    async def start(self) -> None:
        """Bind and serve; a port in use is a configuration error naming the setting."""
        from bot.console.web import build_app

        self._runner = await listen(
            build_app(self.deps), self.host, self.port, setting="DARAJA_CONSOLE_PORT"
        )
        log.info("web console on http://%s:%d/console", self.host, self.bound_port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def register(sub: Any) -> None:
    """Add `daraja console`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "console", help="serve the web console on its own (links come from the bot's /console)"
    )
    parser.add_argument("--port", type=int, help="port (default: DARAJA_CONSOLE_PORT or 8090)")
    parser.add_argument("--listen", help="address (default: DARAJA_CONSOLE_LISTEN)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bot.settings import load_settings

    settings = load_settings()
    asyncio.run(_serve(settings, args.port, args.listen))
    return 0


async def _serve(settings: Settings, port: int | None, listen: str | None) -> None:
    from bot.app import build_services

    services = build_services(settings)
    await services.db.upgrade()
    server = ConsoleServer(
        build_deps(services),
        host=listen or settings.console_listen,
        port=port or settings.console_port or 8090,
    )
    await server.start()  # logs where it listens
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        await services.db.dispose()
