"""The bot starts while the Bot API is unreachable (a field link down at boot) and waits for it.

The sandbox starts late, on the port the bot was told: meanwhile the bot keeps running, logs
one line (no traceback), and its /healthz says it is not connected yet. Once the Bot API
answers, the bot starts normally and nothing is lost: an update committed before the outage is
relayed, and so is a message written afterwards. DARAJA_TELEGRAM_RETRY_MAX_SECONDS makes the
waits short here; the behaviour is the same with the default one-minute ceiling.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bot.devtools.sandbox.client import SandboxClient
from bot.devtools.scenario import BotProcess, SandboxProcess
from storage.audit import AuditChain
from storage.db import Database
from storage.models import InboxUpdate
from tests.support.e2e import ADMIN_ID, TOKEN
from tests.support.operation import enroll_operation
from tests.support.ports import listen_port

OFFICER = 700_000_101
PNH, MSS = -1_001_500_000_001, -1_001_500_000_002
DOWN_FOR_S = 4.0


def _healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _update(update_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": PNH, "type": "supergroup", "title": "PNH-UDMO-2"},
            "from": {"id": OFFICER, "is_bot": False, "first_name": "Jean"},
            "text": text,
        },
    }


async def _prepare(database_url: str) -> None:
    """What an earlier run left: an enrolled operation, and one update committed to the inbox
    but not processed (the process died right after storing it)."""
    from bot.services.enrollment import EnrollmentService

    db = Database(database_url)
    await db.upgrade()
    try:
        service = EnrollmentService(db, AuditChain(key=None), [ADMIN_ID])
        groups = ((PNH, "PNH-UDMO-2", "PNH", "ht"), (MSS, "KE-3", "MSS", "en"))
        await enroll_operation(service, name="Furcy", groups=groups)
        async with db.transaction() as s:
            payload = json.dumps(_update(5, "Ekip la rive Kenscoff a 14:30"))
            s.add(InboxUpdate(update_id=5, payload=payload))
    finally:
        await db.dispose()


async def test_bot_waits_for_an_unreachable_bot_api_then_starts_and_loses_nothing(
    tmp_path: Path, models_dir: Path
) -> None:
    api_port, metrics_port = listen_port(), listen_port()
    database_url = f"sqlite+aiosqlite:///{tmp_path}/late.db"
    await _prepare(database_url)
    bot = BotProcess(
        tmp_path,
        f"http://127.0.0.1:{api_port}",  # nothing listens there yet
        models_dir,
        database_url,
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_TELEGRAM_RETRY_MAX_SECONDS": "0.5",
            "DARAJA_METRICS_PORT": str(metrics_port),
            "DARAJA_POLL_TIMEOUT": "2",
            "DARAJA_RATE_CHAT_PER_S": "0",
            "DARAJA_RATE_GROUP_PER_MIN": "0",
        },
    )
    sandbox = SandboxProcess(tmp_path, TOKEN, no_flood=True, port=api_port)
    try:
        await asyncio.to_thread(bot.start, until="cannot be reached")
        await asyncio.sleep(DOWN_FOR_S)  # several attempts at a 0.5 s ceiling
        status, health = _healthz(metrics_port)
        assert status == 503
        assert health["telegram"] == "connecting"
        assert "not connected to the Bot API" in health["status"]
        assert bot.proc is not None
        assert bot.proc.poll() is None

        sandbox.start()  # the link comes back
        client = SandboxClient.connect(sandbox.url)
        try:
            await client.create_user("Jean", id=OFFICER, language_code="ht")
            for chat_id, title in ((PNH, "PNH-UDMO-2"), (MSS, "KE-3")):
                await client.create_group(
                    title, members=[OFFICER], owner=OFFICER, bot="member", supergroup=True,
                    id=chat_id,
                )  # fmt: skip
            await asyncio.to_thread(bot.wait_for_log, "Daraja is running")
            # The update stored before the outage is relayed once the Bot API answers...
            first = await client.wait_for_message(MSS, from_bot=True, contains="14:30", timeout=60)
            # ...and so is a message written now.
            await client.say(PNH, OFFICER, "Checkpoint Furcy louvri a 16:45")
            second = await client.wait_for_message(
                MSS, from_bot=True, contains="16:45", timeout=60
            )
        finally:
            await client.close()
        assert first.message_id != second.message_id
        for _ in range(50):
            status, health = _healthz(metrics_port)
            if status == 200:
                break
            await asyncio.sleep(0.2)
        assert status == 200
        assert health["telegram"] == "connected"
        assert bot.proc.poll() is None  # never exited
    finally:
        bot.stop()
        sandbox.stop()
    logs = bot.logs()
    assert "Traceback" not in logs
    # One line while it was down (at most one a minute), one when it came back.
    assert logs.count("cannot be reached") == 1
    assert "works again after" in logs


async def test_bot_still_waiting_for_the_bot_api_stops_cleanly_when_told(
    tmp_path: Path, models_dir: Path
) -> None:
    bot = BotProcess(
        tmp_path,
        f"http://127.0.0.1:{listen_port()}",  # never reachable
        models_dir,
        f"sqlite+aiosqlite:///{tmp_path}/never.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={"DARAJA_TELEGRAM_RETRY_MAX_SECONDS": "0.5"},
    )
    await asyncio.to_thread(bot.start, until="cannot be reached")
    bot.stop()
    assert bot.proc is not None
    assert bot.proc.returncode == 0
    logs = bot.logs()
    assert "stopped before the Bot API could be reached" in logs
    assert "Traceback" not in logs
    assert "Unclosed" not in logs
