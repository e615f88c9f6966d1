"""End-to-end harness: the Bot API sandbox as a process (the bot process: `bot.scenario`).

Tests drive people through the sandbox's control API over HTTP and read what each chat shows,
exactly as a person would; the bot under test knows nothing of the harness.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADMIN_ID = 900001
TOKEN = "7000000001:sandbox-e2e-token-0123456789abcdefghij"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARAJA_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@dataclass
class SandboxProcess:
    """`daraja sandbox` on a free loopback port."""

    workdir: Path
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    control_url: str = ""

    def start(self) -> SandboxProcess:
        """Start and wait for the ready line."""
        log = (self.workdir / "sandbox.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "sandbox",
                "--port",
                "0",
                "--json",
                "--token",
                TOKEN,
            ],
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
