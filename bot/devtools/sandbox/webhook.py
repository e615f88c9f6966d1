"""The sandbox's webhook sender: while a webhook is set, updates are POSTed to it.

Like Telegram: each update is sent as a JSON body with the `X-Telegram-Bot-Api-Secret-Token`
header (when setWebhook gave a secret); a 2xx answer removes it from the queue; anything else
(non-2xx, refused connection, timeout) keeps it and it is retried with backoff, and
getWebhookInfo reports the last error. Simplifications: one update in flight at a time (so
per-chat order holds trivially; Telegram may use up to `max_connections`), and nothing is ever
dropped (Telegram gives up after about a day). The sandbox accepts plain-http webhook URLs on
loopback only, since the bot under test has no certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from bot.devtools.sandbox.state import JSON, RawUpdate, State

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
_KEEP_DELIVERIES = 1000


class WebhookSender:
    """Posts queued updates to the bot's webhook, in order, retrying failures."""

    def __init__(
        self, state: State, *, timeout: float = 10.0, min_backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:  # fmt: skip
        self.state = state
        self.timeout = timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        # What was posted, newest last: update, HTTP status (0: no answer), attempt number.
        self.deliveries: deque[JSON] = deque(maxlen=_KEEP_DELIVERIES)
        self._task: asyncio.Task[None] | None = None
        self._session: Any = None

    def start(self) -> None:
        """Start the sender task (idle until a webhook is set)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sandbox-webhook")

    async def stop(self) -> None:
        """Stop sending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, update: JSON) -> int:
        """POST one update to the current webhook; the HTTP status, or 0 when none came back."""
        import aiohttp

        hook = self.state.webhook
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        headers = {SECRET_HEADER: hook["secret_token"]} if hook.get("secret_token") else {}
        attempt = sum(1 for d in self.deliveries if d["update_id"] == update["update_id"]) + 1
        try:
            if isinstance(update, RawUpdate):
                headers["Content-Type"] = "application/json"
                sending = self._session.post(
                    hook["url"], data=update.text.encode("utf-8", "surrogatepass"), headers=headers
                )
            else:
                sending = self._session.post(hook["url"], json=update, headers=headers)
            async with sending as response:
                await response.read()
                status = int(response.status)
                error = (
                    None if 200 <= status < 300 else f"Wrong response from the webhook: {status}"
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            status, error = 0, f"Connection failed: {type(exc).__name__}"
        self.deliveries.append({"update_id": update["update_id"], "update": update,
                                "status": status, "attempt": attempt})  # fmt: skip
        if error is not None:
            hook["last_error_date"] = int(time.time())
            hook["last_error_message"] = error
            self.state.touch()  # visible in getWebhookInfo: wake whoever waits for a change
        return status

    async def _run(self) -> None:
        state = self.state
        backoff = self.min_backoff
        version = state.version
        while not state.closing:
            if not (state.webhook.get("url") and state.updates):
                version = await state.wait_change(version, 30.0)
                continue
            update = state.updates[0]
            status = await self.post(update)
            if 200 <= status < 300:
                backoff = self.min_backoff
                # Removed by id: the queue may have changed while the request was out.
                state.updates = [u for u in state.updates if u["update_id"] != update["update_id"]]
                state.touch()
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
