"""Durability: SIGKILL the bot during a burst, restart; replay every update; nothing is lost.

Each message carries a tag (#n) so copies can be counted in the sandbox, which is the ground
truth for what officers saw (a copy may reach Telegram without the bot having recorded it).
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sandbox.client import SandboxClient
from bot.devtools.scenario import People
from tests.support.e2e import ADMIN_ID, TOKEN
from tests.support.processes import BotProcess, SandboxProcess

MESSAGES = 150
TAG = re.compile(r"#(\d+)\b")
LANGS = ("ht", "fr", "en", "sw")


@pytest.fixture
def stack(tmp_path: Path, models_dir: Path) -> Any:
    sandbox = SandboxProcess(tmp_path, TOKEN, no_flood=True).start()
    bot = BotProcess(
        tmp_path,
        sandbox.url,
        models_dir,
        f"sqlite+aiosqlite:///{tmp_path}/crash.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_RATE_CHAT_PER_S": "0",
            "DARAJA_RATE_GROUP_PER_MIN": "0",
            "DARAJA_POLL_TIMEOUT": "2",
        },
    ).start()
    try:
        yield sandbox, bot, tmp_path / "crash.db"
    finally:
        bot.stop()
        sandbox.stop()


async def _setup(people: People) -> list[tuple[int, int]]:
    await people.new_operation("Crash", [(f"C{i}", "PNH", LANGS[i]) for i in range(4)])
    chats = []
    for i in range(4):
        officer = await people.client.create_user(f"Officer {i}", language_code=LANGS[i])
        group = await people.group(f"Crash C{i}", officer, [])
        await people.enroll(group, officer, await people.issue_code(f"chat Crash C{i}"))
        chats.append((group.id, officer.id))
    return chats


async def _copies(client: SandboxClient, chats: list[tuple[int, int]]) -> Counter[tuple[int, int]]:
    """Copies of message #n per partner chat (message n is written in chats[n % len(chats)];
    the bot's messages there are the sender's translation check, not copies)."""
    seen: Counter[tuple[int, int]] = Counter()
    for chat, _ in chats:
        for message in await client.history(chat):
            if message.from_bot and (m := TAG.search(message.text or "")):
                n = int(m.group(1))
                if chats[n % len(chats)][0] != chat:
                    seen[(n, chat)] += 1
    return seen


async def _wait_all(
    client: SandboxClient, chats: list[tuple[int, int]], expected: int
) -> Counter[tuple[int, int]]:
    for _ in range(240):
        seen = await _copies(client, chats)
        if len(seen) >= expected:
            return seen
        await asyncio.sleep(0.5)
    return await _copies(client, chats)


async def test_sigkill_during_a_burst_loses_nothing(stack: Any) -> None:
    sandbox, bot, db_path = stack
    client = SandboxClient.connect(sandbox.url)
    try:
        chats = await _setup(People(client, ADMIN_ID))
        rng = random.Random(20261126)
        expected_pairs = {
            (n, chat)
            for n in range(MESSAGES)
            for j, (chat, _) in enumerate(chats)
            if j != n % len(chats)
        }
        kills = sorted(rng.sample(range(10, MESSAGES - 10), 3))
        for n in range(MESSAGES):
            chat, officer = chats[n % len(chats)]
            await client.say(chat, officer, f"Patrol report #{n} all quiet")
            if n in kills:
                await asyncio.sleep(rng.uniform(0.05, 0.6))
                bot.kill()
                await asyncio.to_thread(bot.start)
        seen = await _wait_all(client, chats, len(expected_pairs))
    finally:
        await client.close()
    missing = expected_pairs - set(seen)
    assert missing == set(), f"{len(missing)} copies never arrived"
    duplicated = {pair for pair, count in seen.items() if count > 1}
    # Every original is in the log exactly once.
    con = sqlite3.connect(db_path)
    try:
        tags = [
            TAG.search(text).group(1)
            for (text,) in con.execute(  # type: ignore[union-attr]
                "SELECT text FROM messages"
            )
        ]
        ambiguous = con.execute("SELECT COUNT(*) FROM deliveries WHERE ambiguous = 1").fetchone()[
            0
        ]
        received = con.execute(
            "SELECT COUNT(*) FROM audit_events WHERE event_type = 'message.received'"
        ).fetchone()[0]
    finally:
        con.close()
    assert sorted(map(int, tags)) == list(range(MESSAGES))
    assert received == MESSAGES
    # Duplicates only where a send was in flight at a kill, and then marked ambiguous.
    assert len(duplicated) <= ambiguous
    assert len(duplicated) <= 3 * 4


async def test_replayed_updates_change_nothing(stack: Any) -> None:
    sandbox, bot, db_path = stack
    client = SandboxClient.connect(sandbox.url)
    try:
        chats = await _setup(People(client, ADMIN_ID))
        for n in range(40):
            chat, officer = chats[n % len(chats)]
            await client.say(chat, officer, f"Checkpoint #{n} open")
        before = await _wait_all(client, chats, 40 * 3)
        for _ in range(2):  # the same updates processed twice more, as after lost marks
            bot.stop()
            con = sqlite3.connect(db_path)
            with con:
                con.execute("UPDATE inbox SET state = 'new'")
            con.close()
            await asyncio.to_thread(bot.start)
            sent = await client.command(chats[0][0], chats[0][1], "help")
            await client.wait_for_message(
                chats[0][0], from_bot=True, after=sent.message_id, timeout=30
            )
        after = await _copies(client, chats)
    finally:
        await client.close()
    assert len(before) == 40 * 3
    assert after == before
    assert set(after.values()) == {1}
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 40
    finally:
        con.close()


@pytest.mark.postgres
async def test_two_processes_share_one_postgresql_database_and_lose_nothing(
    tmp_path: Path, models_dir: Path, request: pytest.FixtureRequest
) -> None:
    """A polling bot and a delivery-only worker share the outbox on PostgreSQL (claims with
    SKIP LOCKED); each is SIGKILLed once during the burst and restarted."""
    from sqlalchemy import text

    from storage.db import Database
    from tests.support.postgres import fresh_database_url

    url = fresh_database_url(request)
    sandbox = SandboxProcess(tmp_path, TOKEN, no_flood=True).start()
    relaxed = {
        "DARAJA_RATE_CHAT_PER_S": "0",
        "DARAJA_RATE_GROUP_PER_MIN": "0",
        "DARAJA_POLL_TIMEOUT": "2",
        "DARAJA_OUTBOX_LEASE_SECONDS": "8",
    }
    receiver = BotProcess(
        tmp_path / "a",
        sandbox.url,
        models_dir,
        url,
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env=relaxed,
    )
    worker = BotProcess(
        tmp_path / "b",
        sandbox.url,
        models_dir,
        url,
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={**relaxed, "DARAJA_MODE": "worker"},
    )
    for proc in (receiver, worker):
        proc.workdir.mkdir()
    receiver.start()
    worker.start()
    client = SandboxClient.connect(sandbox.url)
    messages = 80
    try:
        chats = await _setup(People(client, ADMIN_ID))
        expected_pairs = {
            (n, chat)
            for n in range(messages)
            for j, (chat, _) in enumerate(chats)
            if j != n % len(chats)
        }
        for n in range(messages):
            chat, officer = chats[n % len(chats)]
            await client.say(chat, officer, f"Shared report #{n} quiet")
            if n == 25:
                worker.kill()
                await asyncio.to_thread(worker.start)
            if n == 55:
                receiver.kill()
                await asyncio.to_thread(receiver.start)
        seen = await _wait_all(client, chats, len(expected_pairs))
        db = Database(url)
        try:
            async with db.reader() as s:
                ambiguous = (
                    await s.execute(text("SELECT COUNT(*) FROM deliveries WHERE ambiguous"))
                ).scalar_one()
                workers = (
                    await s.execute(
                        text(
                            "SELECT COUNT(DISTINCT (payload::json->>'worker')) FROM audit_events "
                            "WHERE event_type = 'delivery.sent'"
                        )
                    )
                ).scalar_one()
                received = (await s.execute(text("SELECT COUNT(*) FROM messages"))).scalar_one()
        finally:
            await db.dispose()
    finally:
        await client.close()
        worker.stop()
        receiver.stop()
        sandbox.stop()
    assert expected_pairs - set(seen) == set()
    assert received == messages
    duplicated = {pair for pair, count in seen.items() if count > 1}
    assert len(duplicated) <= ambiguous
    assert workers >= 2  # both processes (and their restarts) delivered copies
