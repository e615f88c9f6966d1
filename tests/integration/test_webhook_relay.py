"""Webhook mode end to end: `daraja run` in webhook mode, the sandbox posting updates to it.

The real bot process and the Bot API sandbox (its webhook sender posts each update with the
secret header and retries until it gets a 2xx, like Telegram). People enroll groups and talk;
the bot relays and answers through the webhook. Also: a replayed update is a no-op, a wrong
secret is refused, updates posted while the bot is down arrive once it is back, and the
metrics, /healthz and `daraja health` of the running bot answer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli import main
from bot.devtools.scenario import People
from tests.support.ports import listen_port
from tests.support.processes import BotProcess, SandboxProcess

# One bot for the module: its tests share a test worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("webhook-relay")]

TOKEN = "7000000002:webhook-e2e-token-0123456789abcdefghijk"
SECRET = "hook-secret_0123456789abcdefghij"
ADMIN_ID = 900002
TOKEN_SHAPE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webhook")


@pytest.fixture(scope="module")
def sandbox(workdir: Path) -> Iterator[SandboxProcess]:
    proc = SandboxProcess(workdir, TOKEN, no_flood=True).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"webhook": listen_port(), "metrics": listen_port()}


@pytest.fixture(scope="module")
def bot(sandbox: SandboxProcess, workdir: Path, ports: dict[str, int]) -> Iterator[BotProcess]:
    from tests.support.models import install_fixture_models

    models = install_fixture_models(workdir / "models")
    proc = BotProcess(
        workdir,
        sandbox.url,
        models,
        f"sqlite+aiosqlite:///{workdir}/daraja.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_MODE": "webhook",
            "DARAJA_WEBHOOK_URL": f"http://127.0.0.1:{ports['webhook']}/tg/hook-7f3a",
            "DARAJA_WEBHOOK_LISTEN": "127.0.0.1",
            "DARAJA_WEBHOOK_PORT": str(ports["webhook"]),
            "DARAJA_WEBHOOK_SECRET": SECRET,
            "DARAJA_METRICS_PORT": str(ports["metrics"]),
            # JSON lines at DEBUG: the most verbose logs must still hold no secret.
            "DARAJA_LOG_JSON": "true",
            "DARAJA_LOG_LEVEL": "DEBUG",
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
        yield People(client, ADMIN_ID)
    finally:
        await client.close()


async def _two_enrolled_groups(people: People, op: str) -> dict[str, Any]:
    c = people.client
    await people.new_operation(op, [("PNH-W", "PNH", "ht"), ("KE-W", "MSS", "en")])
    world: dict[str, Any] = {}
    for code, name, lang in (("PNH-W", "Jean", "ht"), ("KE-W", "Otieno", "en")):
        person = await c.create_user(name, language_code=lang)
        group = await people.group(f"{op} {code}", person, [])
        await people.enroll(group, person, await people.issue_code(f"chat {op} {code}"))
        world[code] = {"group": group, "person": person}
    return world


async def _bot_copies(people: People, group: Any, contains: str) -> list[Any]:
    return [m for m in await people.client.history(group) if m.from_bot and contains in m.text]


async def test_bot_sets_its_webhook_with_the_secret(people: People, bot: BotProcess) -> None:
    info = await people.client.bot_info()
    assert info["webhook_url"].endswith("/tg/hook-7f3a")
    assert info["pending_updates"] == 0
    sets = await people.client.requests("setWebhook")
    assert [r.status for r in sets] == [200]
    # Polling is off: the bot never called getUpdates.
    assert await people.client.requests("getUpdates") == []


async def test_relay_through_the_webhook_and_replay_is_a_no_op(people: People) -> None:
    c = people.client
    world = await _two_enrolled_groups(people, "HookA")
    pnh, ke = world["PNH-W"], world["KE-W"]
    mark = (await c.history(ke["group"]))[-1].message_id
    sent = await c.say(pnh["group"], pnh["person"], "Inite KE-3 rive Kenscoff a 14:30")
    copy = await c.wait_for_message(
        ke["group"], from_bot=True, after=mark, contains="14:30", timeout=30
    )
    assert "Jean" in copy.text
    # Every update reached the bot by POST with the secret; find the officer's message.
    posted = [
        d
        for d in await c.webhook_deliveries()
        if d["update"].get("message", {}).get("message_id") == sent.message_id
        and d["update"]["message"]["chat"]["id"] == pnh["group"].id
    ]
    assert [d["status"] for d in posted] == [200]
    # Telegram did not see the 200 and posts the update again: acknowledged, not relayed twice.
    assert await c.redeliver(posted[0]["update_id"]) == 200
    # A later message is relayed after the replay was handled (per-chat order), so if the
    # replay had produced a copy it would be there by now.
    await c.say(pnh["group"], pnh["person"], "Nou rive 15:45")
    await c.wait_for_message(ke["group"], from_bot=True, after=mark, contains="15:45", timeout=30)
    assert len(await _bot_copies(people, ke["group"], "14:30")) == 1


async def test_wrong_secret_is_refused(
    people: People, bot: BotProcess, ports: dict[str, int]
) -> None:
    c = people.client
    world = await _two_enrolled_groups(people, "HookB")
    pnh, ke = world["PNH-W"], world["KE-W"]
    forged = {
        "update_id": 99_000_001,
        "message": {
            "message_id": 9_999,
            "date": 1_700_000_000,
            "chat": {"id": pnh["group"].id, "type": "supergroup", "title": "forged"},
            "from": {"id": pnh["person"].id, "is_bot": False, "first_name": "Jean"},
            "text": "Forged order 23:59",
        },
    }
    url = f"http://127.0.0.1:{ports['webhook']}/tg/hook-7f3a"
    wrong = "guessed-secret-0123456789abcdef"
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await http.post(
            url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": wrong}
        )
        missing = await http.post(url, json=forged)
    assert (refused.status_code, missing.status_code) == (403, 403)
    mark = (await c.history(ke["group"]))[-1].message_id
    await c.say(pnh["group"], pnh["person"], "Real order 22:10")
    await c.wait_for_message(ke["group"], from_bot=True, after=mark, contains="22:10", timeout=30)
    assert await _bot_copies(people, ke["group"], "23:59") == []
    logs = bot.logs()
    assert "webhook request refused" in logs
    assert wrong not in logs
    assert SECRET not in logs


async def test_updates_posted_while_the_bot_is_down_arrive_after_restart(
    people: People, bot: BotProcess
) -> None:
    c = people.client
    world = await _two_enrolled_groups(people, "HookC")
    pnh, ke = world["PNH-W"], world["KE-W"]
    mark = (await c.history(ke["group"]))[-1].message_id
    bot.stop()
    try:
        sent = await c.say(pnh["group"], pnh["person"], "Blokis Furcy 06:15")
        # The sandbox keeps retrying (connection refused) and reports it like Telegram.
        await c.wait_until(
            lambda: _failed_attempt(c, sent.message_id), timeout=15, what="a failed post"
        )
    finally:
        bot.start()
    copy = await c.wait_for_message(
        ke["group"], from_bot=True, after=mark, contains="06:15", timeout=30
    )
    assert "Jean" in copy.text
    assert len(await _bot_copies(people, ke["group"], "06:15")) == 1


async def _failed_attempt(c: Any, message_id: int) -> bool | None:
    for d in await c.webhook_deliveries():
        if d["update"].get("message", {}).get("message_id") == message_id and d["status"] != 200:
            return True
    return None


async def test_metrics_healthz_and_health_command(
    people: People,
    bot: BotProcess,
    workdir: Path,
    ports: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = f"http://127.0.0.1:{ports['metrics']}"
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(f"{base}/metrics")).text
        health = await http.get(f"{base}/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    values = _samples(metrics)
    assert values['daraja_info{mode="webhook"}'] == 1
    assert values["daraja_updates_received_total"] > 0
    assert "daraja_outbox_pending" in values
    assert "daraja_inbox_lag_seconds_count" in values
    # `daraja health` with the bot's settings, in-process: it asks the running bot.
    for name, value in bot.env().items():
        if name.startswith("DARAJA_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(workdir)
    capsys.readouterr()
    status = await asyncio.to_thread(main, ["health", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0, result
    assert [c["name"] for c in result["checks"]] == [
        "settings",
        "database",
        "models",
        "inbox",
        "bot",
    ]
    assert result["checks"][1]["detail"] == "read by the running bot (its /healthz is ok)"


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_no_token_or_secret_in_any_log(bot: BotProcess, workdir: Path) -> None:
    logs = sorted(p.name for p in workdir.glob("*.log"))
    assert {"sandbox.log", "bot-1.log"} <= set(logs)
    for name in logs:
        text = (workdir / name).read_text(errors="replace")
        assert TOKEN_SHAPE.search(text) is None, name
        assert SECRET not in text, name


def test_bot_log_is_json_lines(bot: BotProcess) -> None:
    lines = bot.logs().splitlines()
    entries = [json.loads(line) for line in lines if line]
    assert all(isinstance(e, dict) and {"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    assert any(e["level"] == "DEBUG" for e in entries)
    assert any(e["msg"] == "Daraja is running (webhook mode)" for e in entries)
