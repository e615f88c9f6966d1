"""The sandbox's HTTP server: Bot API routes, file downloads, and the control routes.

    /bot<TOKEN>/<method>          Bot API (GET or POST; query, form, multipart or JSON)
    /file/bot<TOKEN>/<file_path>  file downloads (getFile)
    /_sandbox/<operation>         control API (POST JSON object of arguments)

Each Bot API request goes: token check → method lookup → parameters → injected fault →
flood check → method → log. It binds to loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.devtools.sandbox.client import SandboxClient
from bot.devtools.sandbox.control import Controller
from bot.devtools.sandbox.flood import (
    LIMITED_METHODS,
    Fault,
    FaultInjector,
    FloodControl,
    FloodLimits,
    RequestLog,
)
from bot.devtools.sandbox.methods import METHODS, Params, Upload, canonical, parse_chat_id
from bot.devtools.sandbox.state import ApiError, ControlError, State, api_json
from bot.devtools.sandbox.webhook import WebhookSender

log = logging.getLogger(__name__)

# A fixed, well-formed token so the demo and tests can be configured before the sandbox starts.
DEFAULT_TOKEN = "7000000001:sandbox-token-not-valid-on-telegram"  # noqa: S105 - a fake
_UPLOAD_LIMIT = 50 * 1024 * 1024


def random_token() -> str:
    """A fresh well-formed bot token for one sandbox."""
    return f"7{secrets.randbelow(10**9):09d}:sandbox-{secrets.token_urlsafe(24)}"


class Sandbox:
    """A Bot API sandbox on 127.0.0.1; `async with Sandbox() as sb:` then point a bot at sb.url."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        bot_username: str = "daraja_sandbox_bot",
        bot_name: str = "Daraja",
        privacy_mode: bool = False,
        flood: FloodLimits | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the sandbox listens on loopback only")
        self.token = token
        self.host = host
        self.port = port
        self.state = State(token, bot_username=bot_username, bot_name=bot_name,
                           privacy_mode=privacy_mode)  # fmt: skip
        self.flood = FloodControl(flood)
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.controller = Controller(self.state, self.flood, self.faults, self.log)
        # Posts updates to the bot's webhook once setWebhook names one.
        self.webhook = WebhookSender(self.state)
        self.controller.webhook = self.webhook
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Bot API root: use `f"{url}/bot"` as python-telegram-bot's base_url."""
        return f"http://{self.host}:{self.port}"

    @property
    def bot_base_url(self) -> str:
        """python-telegram-bot's `base_url` for this sandbox."""
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        """python-telegram-bot's `base_file_url` for this sandbox."""
        return f"{self.url}/file/bot"

    @property
    def control_url(self) -> str:
        """Root of the control routes."""
        return f"{self.url}/_sandbox"

    @property
    def client(self) -> SandboxClient:
        """An in-process `SandboxClient` (no HTTP) for tests and the demo."""
        return SandboxClient.in_process(self.controller)

    async def start(self) -> Sandbox:
        """Bind and start serving; `port` becomes the actual port."""
        app = web.Application(client_max_size=_UPLOAD_LIMIT)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        app.router.add_post("/_sandbox/{op}", self._control)
        app.router.add_get("/", self._index)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.webhook.start()
        log.info("Bot API sandbox listening on %s", self.url)
        return self

    async def stop(self) -> None:
        """Wake every long poll and delayed response, then close."""
        self.state.close()
        self._closing.set()
        await self.webhook.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- Bot API -------------------------------------------------------------------------

    @staticmethod
    def _reply(body: dict[str, Any], status: int = 200) -> web.Response:
        # api_json: raw updates (malformed-update tests) go out exactly as they were queued.
        return web.Response(
            text=api_json(body), status=status, content_type="application/json",
        )  # fmt: skip

    def _error(
        self, error: ApiError, method: str, chat_id: int | None, outcome: str
    ) -> web.Response:
        self.log.add(method, chat_id, error.code, outcome)
        return self._reply(error.to_json(), error.code)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return self._error(ApiError(401, "Unauthorized"), name, None, "unauthorized")
        method = canonical(name)
        if method is None:
            return self._error(ApiError(404, "Not Found"), name, None, "not_found")
        try:
            params = await self._params(request)
        except ApiError as exc:
            return self._error(exc, method, None, "error")
        chat_id = parse_chat_id(params)
        fault = self.faults.pick(method, chat_id)
        if fault is not None and fault.kind != "timeout_after_accept":
            return self._fault(request, fault, method, chat_id)
        limited = method in LIMITED_METHODS
        retry = self.flood.retry_after(chat_id) if limited else None
        if retry is not None:
            error = ApiError(
                429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
            )
            return self._error(error, method, chat_id, "flood")
        try:
            result = await METHODS[method](self.state, params)
        except ApiError as exc:
            return self._error(exc, method, chat_id, "error")
        if limited:
            self.flood.consume(chat_id)
        if fault is not None:  # accepted and stored, but the bot never hears back in time
            self.log.add(method, chat_id, 200, "fault:timeout_after_accept")
            if fault.delay is None:
                return self._drop(request)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay)
            return self._reply({"ok": True, "result": result})
        self.log.add(method, chat_id, 200, "ok")
        return self._reply({"ok": True, "result": result})

    def _fault(
        self, request: web.Request, fault: Fault, method: str, chat_id: int | None
    ) -> web.StreamResponse:
        if fault.kind == "drop":
            self.log.add(method, chat_id, 0, "fault:drop")
            return self._drop(request)
        if fault.kind == "flood":
            retry = fault.retry_after
            error = ApiError(
                429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
            )
        else:
            texts = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            error = ApiError(fault.status, texts.get(fault.status, "Internal Server Error"))
        return self._error(error, method, chat_id, f"fault:{fault.kind}")

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)

    @staticmethod
    async def _params(request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, Upload] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: can't parse JSON object")
                values.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = Upload(value.filename, value.file.read(), value.content_type)
                    else:
                        values[key] = value
        return Params(values, files)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._reply(ApiError(401, "Unauthorized").to_json(), 401)
        path = request.match_info["path"]
        known = next((f for f in self.state.files.values() if f["path"] == path), None)
        if known is None:
            return self._reply(ApiError(404, "Not Found").to_json(), 404)
        return web.Response(body=known["data"], content_type="application/octet-stream")

    # -- control -------------------------------------------------------------------------

    async def _control(self, request: web.Request) -> web.Response:
        op = request.match_info["op"]
        try:
            args = await request.json() if request.can_read_body else {}
        except ValueError:
            return self._reply({"ok": False, "error": "body must be a JSON object"}, 400)
        if not isinstance(args, dict):
            return self._reply({"ok": False, "error": "body must be a JSON object"}, 400)
        try:
            result = await self.controller.dispatch(op, args)
        except ControlError as exc:
            return self._reply({"ok": False, "error": str(exc)}, 400)
        return self._reply({"ok": True, "result": result})

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="Daraja Bot API sandbox: /bot<token>/<method>, /_sandbox/<op>\n")
