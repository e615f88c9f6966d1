"""End-to-end fixtures: one sandbox and one bot process for the session, people per test.

The session's bot logs at DEBUG, the most a deployment can log; bots that tests start
themselves log at INFO. After every test, each bot process it used or started has its log
searched for secrets, enrollment codes and what people wrote (`tests.support.e2e.leaks`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.devtools.scenario import People
from tests.support.e2e import ADMIN_ID, AUDIT_KEY, TOKEN, Said, leaks, read_sandbox, watch
from tests.support.processes import BotProcess, SandboxProcess

_names = itertools.count(1)


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def models_dir(e2e_dir: Path) -> Path:
    """The bundled fixture models, installed as an operator would."""
    from tests.support.models import install_fixture_models

    return install_fixture_models(e2e_dir / "models")


@pytest.fixture(scope="session")
def sandbox(e2e_dir: Path) -> Iterator[SandboxProcess]:
    proc = SandboxProcess(e2e_dir, TOKEN).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def console_port() -> int:
    """A free local port for the bot's web console."""
    from tests.support.ports import listen_port

    return listen_port()


@pytest.fixture(scope="session")
def bot(
    sandbox: SandboxProcess, e2e_dir: Path, models_dir: Path, console_port: int
) -> Iterator[BotProcess]:
    proc = BotProcess(
        e2e_dir,
        sandbox.url,
        models_dir,
        f"sqlite+aiosqlite:///{e2e_dir}/data/daraja.db",  # data/ is made by the bot
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_RATE_CHAT_PER_S": "0",
            "DARAJA_RATE_GROUP_PER_MIN": "0",
            "DARAJA_LOG_LEVEL": "DEBUG",
            "DARAJA_AUDIT_HMAC_KEY": AUDIT_KEY,
            "DARAJA_CONSOLE_PORT": str(console_port),
        },
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def people(sandbox: SandboxProcess, bot: BotProcess) -> AsyncIterator[People]:
    from bot.devtools.sandbox.client import SandboxClient

    client = SandboxClient.connect(sandbox.url)
    try:
        await client.set_flood(enabled=False)
        yield People(client, ADMIN_ID)
    finally:
        await client.close()


@pytest.fixture
def op_name() -> str:
    """A fresh operation name per test."""
    return f"Op{next(_names)}"


@pytest.fixture(autouse=True)
def _no_secret_or_content_in_bot_logs(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail a test whose bots logged a secret, an enrollment code or a text people wrote."""
    watched = []
    said = Said()
    if "bot" in request.fixturenames:
        watched.append(watch(request.getfixturevalue("bot")))
    start, stop = BotProcess.start, SandboxProcess.stop

    def start_watched(self: BotProcess, timeout: float = 60.0) -> BotProcess:
        if all(w.bot is not self for w in watched):
            watched.append(watch(self))
        return start(self, timeout)

    def stop_read(self: SandboxProcess) -> None:
        # What was said there is read before the sandbox (and its chats) is gone.
        if self.proc is not None and self.proc.poll() is None:
            read_sandbox(self.control_url, said)
        stop(self)

    monkeypatch.setattr(BotProcess, "start", start_watched)
    monkeypatch.setattr(SandboxProcess, "stop", stop_read)
    yield
    if "sandbox" in request.fixturenames:
        read_sandbox(request.getfixturevalue("sandbox").control_url, said)
    found = [leak for w in watched for leak in leaks(w, said)]
    assert found == [], "the bot's log holds secrets or message content"
