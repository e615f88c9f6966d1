"""The Bot API transport: python-telegram-bot's request interface over aiohttp.

python-telegram-bot ships an httpx transport. Every copy the relay posts is one Bot API request,
and under a burst httpx/httpcore's per-request work was the largest share of the bot's event
loop (about a third of it in `daraja bench relay`, partly a failed `import sniffio` on every
request). aiohttp, already a dependency for the webhook and the sandbox, does the same work
for a fraction of the CPU.

Errors keep the meaning the outbox relies on (bot/delivery/outbox.py):
- a timeout after the request may have been written is `TimedOut` (Telegram may have acted:
  the outbox marks a resend as a possible repeat);
- failing to connect, or the connection breaking, is `NetworkError` (retried, not ambiguous),
  as python-telegram-bot's own transport reports it.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A pooled aiohttp session; one instance per purpose (API calls, long polling)."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 64,
        read_timeout: float | None = 20.0,
        write_timeout: float | None = 20.0,
        connect_timeout: float | None = 10.0,
        pool_timeout: float | None = 10.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (python-telegram-bot adds it to long-poll timeouts)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (idempotent)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300),
                headers={"User-Agent": self.USER_AGENT},
                # No cookies, no environment proxies picked up silently.
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; returns (HTTP status, body)."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        write = self._write_timeout if isinstance(write_timeout, DefaultValue) else write_timeout
        connect = (
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        )
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        # aiohttp has no separate write timeout: the body is written within the first read
        # window, so the read timeout covers write + wait for the first byte.
        socket_read = None if read is None else read + (write or 0.0)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=pool,  # waiting for a free pooled connection (and connecting)
            sock_connect=connect,
            sock_read=socket_read,
        )
        body: Any = None
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                form = aiohttp.FormData(quote_fields=False)
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                body = form
            else:
                # A JSON body (Telegram accepts it for every method), objects as objects: one
                # `json.dumps` instead of form-encoding each parameter.
                body = json.dumps(request_data.parameters, ensure_ascii=False).encode()
        try:
            async with session.request(
                method,
                url,
                data=body,
                headers=_JSON if isinstance(body, bytes) else None,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as err:
            # No connection was made: the request never left.
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err


class UpdatesRequest(AiohttpRequest):
    """The long-polling transport: a getUpdates answer is read element by element when it
    cannot be read whole (one update nested too deeply must not fail the batch), and an
    unreadable answer is reported without its content (it holds people's messages)."""

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        """Telegram's answer as a dict; see `bot.delivery.raw_updates.updates_response`."""
        from bot.delivery.raw_updates import updates_response

        try:
            return updates_response(payload.decode("utf-8", "replace"))
        except ValueError as exc:
            raise TelegramError("Invalid server response (not JSON)") from exc
