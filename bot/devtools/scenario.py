"""Scripted people for the Bot API sandbox: the demo and the end-to-end tests act through this.

Each helper does what a person would do in Telegram (open the bot's private chat, send a command,
create and enroll a group) through the sandbox's control client and waits for the bot's answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CODE_RE = re.compile(r"DRJ-[A-Z0-9]{4}-[A-Z0-9]{4}")
WAIT = 20.0
ROOT = Path(__file__).resolve().parents[3]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARAJA_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class People:
    """Helpers that act as the people of an operation, through the sandbox client."""

    def __init__(self, client: Any, admin_id: int) -> None:
        self.client = client
        self.admin_id = admin_id
        self.admin: Any = None

    async def ensure_admin(self) -> Any:
        """The admin (in DARAJA_ADMIN_IDS), with the private chat opened once."""
        if self.admin is None:
            from bot.devtools.sandbox.client import SandboxError

            with contextlib.suppress(SandboxError):  # already created by an earlier test
                await self.client.create_user("Admin", id=self.admin_id, language_code="en")
            self.admin = self.admin_id
            await self.open_private(self.admin_id)
        return self.admin

    async def admin_says(self, command: str, args: str, *, expect: str | None = None) -> Any:
        """The admin sends a command privately and gets the bot's answer."""
        admin = await self.ensure_admin()
        sent = await self.client.command(admin, admin, command, args)
        return await self.client.wait_for_message(
            admin, from_bot=True, after=sent.message_id, contains=expect, timeout=WAIT
        )

    async def new_operation(
        self, name: str, units: list[tuple[str, str, str]], *, language: str = "fr"
    ) -> None:
        """Create an operation and its units (code, side, language) through bot commands."""
        await self.admin_says("newop", f"{name} {language}", expect=name)
        for code, side, lang in units:
            await self.admin_says("addunit", f"{name} {code} {side} {lang}", expect=code)

    async def issue_code(self, args: str) -> str:
        """`/code …` as the admin; returns the code the bot printed."""
        reply = await self.admin_says("code", args, expect="DRJ-")
        match = CODE_RE.search(reply.text or "")
        assert match, reply.text
        return match.group(0)

    async def open_private(self, user: Any) -> Any:
        """A person opens the bot's private chat (/start) and reads the greeting."""
        sent = await self.client.start(user)
        return await self.client.wait_for_message(
            user, from_bot=True, after=sent.message_id, timeout=WAIT
        )

    async def ask(self, chat: Any, user: Any, command: str, args: str = "") -> Any:
        """A person sends a command and reads the bot's answer."""
        sent = await self.client.command(chat, user, command, args)
        return await self.client.wait_for_message(
            chat, from_bot=True, after=sent.message_id, timeout=WAIT
        )

    async def group(self, title: str, owner: Any, members: list[Any]) -> Any:
        """A supergroup with the bot in it, created by `owner`; waits for the bot's greeting
        (which tells an unenrolled group how to enroll) so later answers are not mixed up."""
        group = await self.client.create_group(
            title,
            members=[owner, *members],
            admins=[owner],
            owner=owner,
            bot="member",
            supergroup=True,
        )
        await self.client.wait_for_message(group, from_bot=True, timeout=WAIT)
        return group

    async def enroll(self, group: Any, owner: Any, code: str) -> Any:
        """The group's owner enrolls it; returns the bot's confirmation."""
        sent = await self.client.command(group, owner, "enroll", code)
        return await self.client.wait_for_message(
            group, from_bot=True, after=sent.message_id, timeout=WAIT
        )


@dataclass
class BotProcess:
    """The real bot, `daraja run`, pointed at the sandbox."""

    workdir: Path
    api_url: str
    models_dir: Path
    database_url: str
    token: str
    admin_ids: str
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        """Where the bot's log goes (one file per start)."""
        return self.workdir / f"bot-{self.starts}.log"

    def env(self) -> dict[str, str]:
        """The bot's environment: only the documented settings."""
        return _env(
            {
                "DARAJA_TELEGRAM_TOKEN": self.token,
                "DARAJA_TELEGRAM_API_URL": self.api_url,
                "DARAJA_DATABASE_URL": self.database_url,
                "DARAJA_MODELS_DIR": str(self.models_dir),
                "DARAJA_ADMIN_IDS": self.admin_ids,
                "DARAJA_POLL_TIMEOUT": "10",
                "DARAJA_LOG_LEVEL": "INFO",
                **self.extra_env,
            }
        )

    def start(self, timeout: float = 60.0, *, until: str = "Daraja is running") -> BotProcess:
        """Start `daraja run` and wait until its log says `until` (by default: running)."""
        self.starts += 1
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
            cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if until in text:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot exited with {self.proc.returncode}:\n{text[-4000:]}")
            time.sleep(0.1)
        raise RuntimeError("bot did not start in time:\n" + self.log_path.read_text()[-4000:])

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        """Wait until the current start's log says `text` (the process must keep running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"bot exited:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"no {text!r} in the log:\n{self.log_path.read_text()[-4000:]}")

    def logs(self) -> str:
        """Every log line the bot wrote, all starts."""
        return "\n".join(
            (self.workdir / f"bot-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
            if (self.workdir / f"bot-{n}.log").exists()
        )


@dataclass
class SandboxProcess:
    """`daraja sandbox` on a free loopback port."""

    workdir: Path
    token: str
    no_flood: bool = False
    port: int = 0  # 0: any free port
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    control_url: str = ""

    def start(self) -> SandboxProcess:
        """Start and wait for the ready line."""
        log = (self.workdir / "sandbox.log").open("w")
        flood = ["--no-flood"] if self.no_flood else []
        port = str(self.port)
        command = [sys.executable, "-m", "bot.cli", "sandbox", "--port", port, "--json"]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [*command, "--token", self.token, *flood],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=_env({}),
            cwd=self.workdir,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(
                "sandbox did not start: " + (self.workdir / "sandbox.log").read_text()
            )
        ready = json.loads(line)
        self.url = ready["api_url"]
        self.control_url = ready["control_url"]
        return self

    def stop(self) -> None:
        """Stop the sandbox."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
