"""A local, strict fake of the Telegram Bot API subset Daraja uses (tests and `daraja demo`).

    from bot.devtools.sandbox import Sandbox
    async with Sandbox() as sb:            # 127.0.0.1, a free port
        api_root = sb.url                  # DARAJA_TELEGRAM_API_URL; PTB base_url=f"{sb.url}/bot"
        people = sb.client                 # SandboxClient: say, press, history, wait_for…

Modules: `server` (HTTP routes), `methods` (Bot API methods), `state` (chats, messages,
updates), `html` (parse mode HTML ↔ entities), `flood` (rate limits, faults, request log),
`control` (people's actions and views), `client` (the control client).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.devtools.sandbox.client import (
        SandboxChat,
        SandboxClient,
        SandboxError,
        SandboxMessage,
        SandboxTimeout,
        SandboxUser,
        max_in_window,
    )
    from bot.devtools.sandbox.flood import FloodLimits, RequestRecord
    from bot.devtools.sandbox.server import DEFAULT_TOKEN, Sandbox, random_token

# Names are imported on first use, so `bot.devtools.sandbox.html` alone does not pull in aiohttp.
_WHERE = {
    "SandboxChat": "client", "SandboxClient": "client", "SandboxError": "client",
    "SandboxMessage": "client", "SandboxTimeout": "client", "SandboxUser": "client",
    "max_in_window": "client", "FloodLimits": "flood", "RequestRecord": "flood",
    "DEFAULT_TOKEN": "server", "Sandbox": "server", "random_token": "server",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bot.devtools.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bot.devtools.sandbox.{module}"), name)


__all__ = [
    "DEFAULT_TOKEN",
    "FloodLimits",
    "RequestRecord",
    "Sandbox",
    "SandboxChat",
    "SandboxClient",
    "SandboxError",
    "SandboxMessage",
    "SandboxTimeout",
    "SandboxUser",
    "max_in_window",
    "random_token",
]
