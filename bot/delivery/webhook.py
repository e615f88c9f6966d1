"""Webhook mode: Telegram POSTs updates to us; each is committed to the durable inbox first.

    receiver = WebhookReceiver.from_settings(settings, inbox, telemetry)
    await receiver.start()                 # listen before Telegram is told where to post
    await receiver.register(bot, allowed_updates=Update.ALL_TYPES)   # setWebhook
    ...
    await receiver.stop()

One request, in this order (cheapest refusal first):
1. the `X-Telegram-Bot-Api-Secret-Token` header is compared in constant time with the
   configured secret: mismatch, missing or not even ASCII → 403 (one log line, never the
   header's value);
2. bodies over 1 MB are refused (413) before they are read; a body (or the headers before it)
   not received within 10 s is answered 408 and the connection closed;
3. the body must be a JSON object with an `update_id` in 0..2^63-1 → else 400;
4. the raw update is committed to the inbox (`InboxProcessor.store`), *then* 200 is answered.
   One that can never be processed (JSON nested too deeply, a lone UTF-16 surrogate) is
   committed as `failed` with the reason and answered 200 too: Telegram would otherwise post
   it again for ever. A database failure answers 500 so Telegram delivers the update again
   later; a replayed update (same `update_id`) is stored once and processed once;
5. a new update is dispatched (processed ordered per chat, like polled updates).

Python-telegram-bot's own webhook server (tornado) hands updates to its queue before anything
is committed, so it cannot keep the "stored before acknowledged" promise: this is a small
aiohttp endpoint instead. The path served is the path of `DARAJA_WEBHOOK_URL`, so a reverse
proxy forwards it unchanged (see docs/webhook.md).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.delivery.raw_updates import RawUpdate, Rejected, triage
from bot.errors import ConfigError
from bot.observability.telemetry import Telemetry

if TYPE_CHECKING:
    from aiohttp import web

    from bot.delivery.inbox import InboxProcessor
    from bot.settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_BODY = 1024 * 1024  # Telegram's updates are a few kB; 1 MB leaves room and bounds memory
# A request's headers, then its body, must arrive within these (slow clients hold sockets).
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
# Refusals are logged at most this often (a scanner must not flood the log).
_REFUSAL_LOG_EVERY_S = 10.0


class WebhookReceiver:
    """The aiohttp endpoint Telegram posts updates to (behind a TLS reverse proxy)."""

    def __init__(
        self,
        inbox: InboxProcessor,
        *,
        secret: str,
        url: str,
        listen: str = "127.0.0.1",
        port: int = 8443,
        telemetry: Telemetry | None = None,
        max_body: int = MAX_BODY,
        header_timeout: float = HEADER_TIMEOUT_S,
        body_timeout: float = BODY_TIMEOUT_S,
    ) -> None:
        if not secret:
            raise ConfigError("DARAJA_WEBHOOK_SECRET: not set; webhook mode needs it")
        self.inbox = inbox
        self.url = url
        self.path = urlsplit(url).path or "/"
        self.listen = listen
        self.port = port
        self.telemetry = telemetry or Telemetry()
        self.max_body = max_body
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._secret = secret.encode()
        self._runner: web.AppRunner | None = None
        self._refused = 0
        self._refusal_logged_at = float("-inf")
        # Group commit: updates arriving while a commit runs are stored together in the next
        # one (SQLite pays one fsync per commit; a burst would otherwise queue on the lock).
        self._queue: list[tuple[RawUpdate, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.accepted = 0  # requests answered 200 (new or replayed updates)

    @classmethod
    def from_settings(
        cls, settings: Settings, inbox: InboxProcessor, telemetry: Telemetry | None = None
    ) -> WebhookReceiver:
        """A receiver configured from DARAJA_WEBHOOK_* settings."""
        if not settings.webhook_url:
            raise ConfigError("DARAJA_WEBHOOK_URL: not set; webhook mode needs it")
        if settings.webhook_secret is None:
            raise ConfigError("DARAJA_WEBHOOK_SECRET: not set; webhook mode needs it")
        return cls(
            inbox,
            secret=settings.webhook_secret.get_secret_value(),
            url=settings.webhook_url,
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            telemetry=telemetry,
        )

    @property
    def bound_port(self) -> int:
        """The port actually listened on (differs from `port` when it was 0)."""
        if self._runner is None or not self._runner.addresses:
            return self.port
        return int(self._runner.addresses[0][1])

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve (before setWebhook, so Telegram's first post finds us)."""
        from aiohttp import web

        # client_max_size bounds a chunked body too (aiohttp answers 413 past it).
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(self.path, self._handle)
        # access_log=None: request lines would carry the path, which operators may keep secret.
        # keepalive_timeout also bounds how long a connection may take to send a request's
        # headers (aiohttp arms it at connect and after each answer): slow clients are closed.
        # lingering_time: after a refusal, the rest of a body is drained this long at most.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=5.0,
            keepalive_timeout=self.header_timeout,
            lingering_time=self.body_timeout,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(
                f"DARAJA_WEBHOOK_PORT: cannot listen on {self.listen}:{self.port} "
                f"({exc.strerror}); choose another port or stop what uses it"
            ) from None
        log.info("webhook endpoint listening on %s:%d", self.listen, self.bound_port)

    async def register(
        self,
        bot: Any,
        *,
        allowed_updates: Sequence[str] | None = None,
        attempts: int | None = None,
        retry_max: float = 60.0,
    ) -> None:
        """Tell Telegram where to post (setWebhook with the secret); network errors are
        retried with backoff (`attempts` times, or until it works when None)."""
        from telegram.error import BadRequest, NetworkError, RetryAfter

        from bot.delivery.ratelimit import retry_seconds
        from bot.delivery.reconnect import Backoff

        backoff = Backoff(retry_max)
        attempt = 0
        while True:
            attempt += 1
            try:
                await bot.set_webhook(
                    url=self.url,
                    secret_token=self._secret.decode(),
                    allowed_updates=list(allowed_updates) if allowed_updates else None,
                    drop_pending_updates=False,
                )
                break
            except BadRequest as exc:
                raise ConfigError(
                    f"DARAJA_WEBHOOK_URL: Telegram refused the webhook ({exc.message}); "
                    "it must be a public https:// URL on port 443, 80, 88 or 8443"
                ) from None
            except (RetryAfter, NetworkError) as exc:
                if attempts is not None and attempt >= attempts:
                    raise
                if isinstance(exc, RetryAfter):
                    wait = retry_seconds(exc.retry_after)
                else:
                    wait = backoff.failed(f"setWebhook failed ({type(exc).__name__})")
                await asyncio.sleep(wait)
        backoff.succeeded("setWebhook")
        # The URL's host only: the path may be the secret-ish part an operator chose.
        log.info("webhook set: Telegram posts updates to %s", urlsplit(self.url).netloc)

    async def stop(self) -> None:
        """Stop accepting requests (requests in progress finish first)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def serve_forever(self) -> None:
        """Wait until cancelled, then stop (the task form of a started receiver)."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # -- one request ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        header = request.headers.get(SECRET_HEADER, "")
        # compare_digest: the time taken does not reveal how much of a guess was right.
        # surrogatepass: any header value encodes (a non-ASCII one simply does not match).
        if not hmac.compare_digest(header.encode("utf-8", "surrogatepass"), self._secret):
            self._log_refusal(request, "wrong or missing secret token")
            return web.Response(status=403, text="forbidden\n")
        if request.content_length is not None and request.content_length > self.max_body:
            self._log_refusal(request, f"body of {request.content_length} bytes")
            return web.Response(status=413, text="too large\n")
        try:
            body = await asyncio.wait_for(request.read(), self.body_timeout)
        except web.HTTPRequestEntityTooLarge:
            self._log_refusal(request, "body over the limit")
            return web.Response(status=413, text="too large\n")
        except TimeoutError:
            self._log_refusal(request, f"body not received within {self.body_timeout:g}s")
            slow = web.Response(status=408, text="too slow\n")
            slow.force_close()
            return slow
        raw = triage(body)
        if isinstance(raw, Rejected):
            self._log_refusal(request, f"not a Telegram update ({raw.reason})")
            return web.Response(status=400, text="not a Telegram update\n")
        try:
            fresh = await self._store(raw)
        except Exception as exc:  # noqa: BLE001 - answered 500, Telegram posts it again
            # Not acknowledged: Telegram keeps the update and posts it again later. No
            # traceback: it would carry the statement's parameters (the update's content).
            log.error(
                "update %d could not be stored (%s); Telegram will retry it",
                raw.update_id,
                type(exc).__name__,
            )
            return web.Response(status=500, text="not stored\n")
        # Committed: from here a crash loses nothing (the inbox resumes it at start). An
        # update stored as failed is acknowledged too: posting it again would not mend it.
        self.accepted += 1
        if fresh:
            self.telemetry.updates_fetched([raw.update_id], time.monotonic())
            self.inbox.dispatch(raw.update_id, raw.data if raw.data is not None else raw.payload)
        return web.Response(status=200)

    async def _store(self, raw: RawUpdate) -> bool:
        """Commit one update (with whatever else is waiting); whether it was new."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((raw, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queue())
        return await future

    async def _write_queue(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            first: dict[int, RawUpdate] = {}
            for raw, _ in batch:
                first.setdefault(raw.update_id, raw)
            try:
                fresh = set(await self.inbox.store(list(first.values())))
            except Exception as exc:  # noqa: BLE001 - every waiting request answers 500
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for raw, future in batch:
                # Only the first copy of an id in a batch counts as new (no double dispatch).
                is_new = raw.update_id in fresh and first.get(raw.update_id) is raw
                if not future.done():
                    future.set_result(is_new)

    def _log_refusal(self, request: web.Request, why: str) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._refusal_logged_at < _REFUSAL_LOG_EVERY_S:
            return
        self._refusal_logged_at = now
        log.warning(
            "webhook request refused from %s: %s (%d refused so far)",
            request.remote or "?",
            why,
            self._refused,
        )
