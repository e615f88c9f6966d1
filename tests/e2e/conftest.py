"""End-to-end fixtures: one sandbox and one bot process for the session, people per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.scenario import BotProcess, People, SandboxProcess
from tests.support.e2e import ADMIN_ID, TOKEN

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
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def bot(
    sandbox: SandboxProcess, e2e_dir: Path, models_dir: Path, console_port: int
) -> Iterator[BotProcess]:
    proc = BotProcess(
        e2e_dir,
        sandbox.url,
        models_dir,
        f"sqlite+aiosqlite:///{e2e_dir}/daraja.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_RATE_CHAT_PER_S": "0",
            "DARAJA_RATE_GROUP_PER_MIN": "0",
            "DARAJA_CONSOLE_PORT": str(console_port),
        },
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def people(sandbox: SandboxProcess, bot: BotProcess) -> AsyncIterator[People]:
    from bot.sandbox.client import SandboxClient

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
