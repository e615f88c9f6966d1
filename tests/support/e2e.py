"""End-to-end constants; the sandbox and bot processes and the scripted people live in
`bot.scenario` (the demo and `daraja bench relay` use them too)."""

from __future__ import annotations

ADMIN_ID = 900001
TOKEN = "7000000001:sandbox-e2e-token-0123456789abcdefghij"
