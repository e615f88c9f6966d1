"""A storm of malformed updates through the sandbox, into the real bot process (long polling).

The seeded corpus (tests/support/fuzz.py) holds every kind of update that once stopped a
polling bot: chats without `type`, stickers and chat_member updates with missing fields, lone
UTF-16 surrogates, chat ids that are objects, JSON nested up to 100,000 deep, fields of the
wrong type. Some come from enrolled groups. The bot must not exit, must say nothing to anyone
about them, must keep each one in its inbox as `failed` with the reason, and must relay the
first normal message after the storm.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sandbox.client import SandboxClient
from bot.devtools.scenario import BotProcess, People, SandboxProcess
from tests.support.e2e import ADMIN_ID, TOKEN, daraja
from tests.support.fuzz import POLLING_KINDS, corpus

SEED = 15_000_001
STORM = 10_000
SENDING = {"sendMessage", "copyMessage", "editMessageText", "sendPhoto", "sendDocument"}


@pytest.fixture
def stack(tmp_path: Path, models_dir: Path) -> Any:
    sandbox = SandboxProcess(tmp_path, TOKEN, no_flood=True).start()
    bot = BotProcess(
        tmp_path,
        sandbox.url,
        models_dir,
        f"sqlite+aiosqlite:///{tmp_path}/storm.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_RATE_CHAT_PER_S": "0",
            "DARAJA_RATE_GROUP_PER_MIN": "0",
            "DARAJA_POLL_TIMEOUT": "2",
        },
    ).start()
    try:
        yield sandbox, bot, tmp_path / "storm.db"
    finally:
        bot.stop()
        sandbox.stop()


def _inbox(db_path: Path, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute(
            "SELECT update_id, state, error FROM inbox WHERE update_id BETWEEN ? AND ?",
            (min(ids), max(ids)),
        ).fetchall()
    finally:
        con.close()
    return {int(u): (str(s), e) for u, s, e in rows}


async def test_ten_thousand_malformed_updates_change_nothing_and_the_next_message_is_relayed(
    stack: Any,
) -> None:
    sandbox, bot, db_path = stack
    client = SandboxClient.connect(sandbox.url)
    try:
        people = People(client, ADMIN_ID)
        await people.new_operation("Storm", [("S-HT", "PNH", "ht"), ("S-EN", "MSS", "en")])
        officer = await client.create_user("Officer Storm", language_code="ht")
        partner = await client.create_user("Partner Storm", language_code="en")
        group_ht = await people.group("Storm HT", officer, [])
        await people.enroll(group_ht, officer, await people.issue_code("chat Storm S-HT"))
        group_en = await people.group("Storm EN", partner, [])
        await people.enroll(group_en, partner, await people.issue_code("chat Storm S-EN"))
        enrolled = {group_ht.id, group_en.id, officer.id}
        before = {c: len(await client.history(c)) for c in (group_ht.id, group_en.id)}
        logged_before = len(await client.requests())

        cases = corpus(SEED, STORM, kinds=POLLING_KINDS, chat_ids=tuple(enrolled))
        ids: list[int] = []
        for i in range(0, len(cases), 500):
            ids += await client.inject_updates([c.raw for c in cases[i : i + 500]])
        # A phrasebook sentence, so its copy is judged ok and the sender gets no check back.
        await client.say(group_ht.id, officer.id, "Inite KE-3 rive Kenscoff a 14:30")
        await client.wait_for_message(group_en.id, from_bot=True, contains="14:30", timeout=120)

        for _ in range(240):  # processing may trail the relay by a moment
            rows = _inbox(db_path, ids)
            if sum(1 for state, _ in rows.values() if state != "new") == len(ids):
                break
            await asyncio.sleep(0.5)
        requests = (await client.requests())[logged_before:]
        after = {c: await client.history(c) for c in (group_ht.id, group_en.id)}
    finally:
        await client.close()

    assert bot.proc is not None
    assert bot.proc.poll() is None  # never exited
    assert bot.starts == 1  # never needed a restart
    wrong = [
        (case.kind, rows.get(update_id))
        for case, update_id in zip(cases, ids, strict=True)
        if rows.get(update_id, ("?", None))[0] != "failed"
        or not (rows[update_id][1] or "").startswith(f"{case.stage}: ")
    ]
    assert wrong == []
    # Nothing was sent to any chat the storm named, except the one relayed copy.
    sends = [r for r in requests if r.method in SENDING]
    assert [r.chat_id for r in sends] == [group_en.id]
    new_ht = after[group_ht.id][before[group_ht.id] :]
    new_en = after[group_en.id][before[group_en.id] :]
    assert [m.from_bot for m in new_ht] == [False]  # the officer's message, no bot answer
    assert [m.from_bot for m in new_en] == [True]  # the copy only
    logs = bot.logs()
    assert "Traceback" not in logs
    assert "Inite KE-3 rive" not in logs
    # The operator sees them: `daraja health --json` counts the failed updates by stage.
    done = await daraja("health", "--json", env=bot.env(), cwd=bot.workdir)
    assert done.returncode == 0, done.stdout
    inbox = {c["name"]: c for c in json.loads(done.stdout)["checks"]}["inbox"]
    assert inbox["counts"]["failed"] == STORM
    assert inbox["counts"]["waiting"] == 0
