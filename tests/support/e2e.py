"""End-to-end constants; the sandbox and bot processes and the scripted people live in
`bot.devtools.scenario` (the demo and `daraja bench relay` use them too).

Also the log check every e2e test gets (tests/e2e/conftest.py): each bot process a test
starts (and the session's bot) has its log searched, after the test, for the secrets it was
given, every enrollment code any chat saw and every text people wrote; any of them fails the
test.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.devtools.scenario import BotProcess

ADMIN_ID = 900001
TOKEN = "7000000001:sandbox-e2e-token-0123456789abcdefghij"

# The session bot's audit key: a secret its logs must not show either.
AUDIT_KEY = "e2e-audit-hmac-key-0123456789abcdef"
# The settings whose values are secrets (never in a log).
SECRET_SETTINGS = (
    "DARAJA_TELEGRAM_TOKEN",
    "DARAJA_WEBHOOK_SECRET",
    "DARAJA_AUDIT_HMAC_KEY",
    "DARAJA_LIBRETRANSLATE_API_KEY",
)
# Shorter texts ("ok", "#3") are words a log line may hold for other reasons.
MIN_TEXT = 8
# Commands whose arguments are what people wrote (the rest are names and ids).
_CONTENT_COMMANDS = ("/flash", "/search", "/report", "/sitrep")
_CODE = re.compile(r"DRJ-[A-Z0-9]{4}-[A-Z0-9]{4}", re.IGNORECASE)


@dataclass
class Said:
    """What people wrote in a sandbox (texts, captions, edits) and every enrollment code."""

    texts: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)

    def add_message(self, message: dict[str, Any]) -> None:
        """One message of a chat's history (as the sandbox's control API shows it)."""
        bodies = [message.get("text") or "", message.get("caption") or ""]
        bodies += [str(e) for e in message.get("edits") or []]  # earlier texts
        for body in bodies:
            self.codes.update(c.upper() for c in _CODE.findall(body))
            if message.get("from_bot") or message.get("kind") == "service":
                continue
            if body.startswith("/"):
                command, _, body = body.partition(" ")
                if command.split("@")[0] not in _CONTENT_COMMANDS:
                    continue
            for line in body.splitlines():
                if len(line.strip()) >= MIN_TEXT:
                    self.texts.add(line.strip())


def read_sandbox(control_url: str, said: Said) -> None:
    """Add every message of every chat of a running sandbox to `said`."""
    import urllib.request

    def call(op: str, args: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{control_url}/{op}",
            data=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        assert body.get("ok"), body
        return body["result"]

    chats = call("chats", {})
    calls = [{"op": "history", "args": {"chat_id": c["id"]}} for c in chats]
    for history in call("batch", {"calls": calls}) if calls else []:
        for message in history["messages"]:
            said.add_message(message)


@dataclass
class WatchedBot:
    """A bot process whose log is searched from where it stood when the watch began."""

    bot: BotProcess
    first_start: int
    offset: int

    def log_since(self) -> dict[str, str]:
        """The log written since the watch began, per file."""
        out: dict[str, str] = {}
        for n in range(max(self.first_start, 1), self.bot.starts + 1):
            path = self.bot.workdir / f"bot-{n}.log"
            if path.exists():
                with path.open("rb") as fh:
                    fh.seek(self.offset if n == self.first_start else 0)
                    out[path.name] = fh.read().decode("utf-8", "replace")
        return out

    def secrets(self) -> list[str]:
        """The secret settings this bot was given."""
        env = self.bot.env()
        return [env[name] for name in SECRET_SETTINGS if env.get(name)]


def watch(bot: BotProcess) -> WatchedBot:
    """Start watching a bot's log at its current end (or from its next start)."""
    path = bot.log_path
    if bot.starts and path.exists():
        return WatchedBot(bot, bot.starts, path.stat().st_size)
    return WatchedBot(bot, bot.starts + 1, 0)


def leaks(watched: WatchedBot, said: Said) -> list[str]:
    """Each secret, enrollment code and sent text found in the bot's log, with the file."""
    found: list[str] = []
    for name, text in watched.log_since().items():
        folded = text.upper()
        for secret in watched.secrets():
            if secret in text:
                found.append(f"{name}: secret {secret[:6]}…")
        found += [f"{name}: code {code}" for code in sorted(said.codes) if code in folded]
        for body in sorted(said.texts):
            escaped = json.dumps(body, ensure_ascii=False)[1:-1]
            if body in text or escaped in text or repr(body)[1:-1] in text:
                found.append(f"{name}: text {body[:40]!r}")
    return found


async def daraja(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`daraja ARGS` as an operator runs it beside the bot, but in-process (`bot.cli.main`, in
    a thread, the event loop's sandbox calls can wait meanwhile): with exactly the DARAJA_*
    settings in `env`, in `cwd`, its output captured. Spares a Python start and its imports."""
    from bot.cli import main

    def run() -> subprocess.CompletedProcess[str]:
        saved = dict(os.environ)
        out, err = io.StringIO(), io.StringIO()
        try:
            for name in [n for n in os.environ if n.startswith("DARAJA_")]:
                del os.environ[name]
            os.environ.update({k: v for k, v in env.items() if k.startswith("DARAJA_")})
            with (
                contextlib.chdir(cwd),
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                status = main(list(args))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return subprocess.CompletedProcess(
            ["daraja", *args], status, out.getvalue(), err.getvalue()
        )

    return await asyncio.to_thread(run)
