"""A SITREP wizard interrupted by a restart of the bot carries on where it was: the answers
given so far are stored, and the person's next answer is taken as the answer to the question
on the screen, not relayed as a message."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sandbox.client import SandboxClient
from bot.devtools.scenario import WAIT, BotProcess, People, SandboxProcess
from bot.i18n import I18n, load_i18n
from tests.support.e2e import ADMIN_ID, TOKEN


@pytest.fixture
def stack(tmp_path: Path, models_dir: Path) -> Any:
    sandbox = SandboxProcess(tmp_path, TOKEN, no_flood=True).start()
    bot = BotProcess(
        tmp_path,
        sandbox.url,
        models_dir,
        f"sqlite+aiosqlite:///{tmp_path}/restart.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={"DARAJA_POLL_TIMEOUT": "2"},
    ).start()
    try:
        yield sandbox, bot
    finally:
        bot.stop()
        sandbox.stop()


async def test_a_sitrep_wizard_survives_a_restart(stack: Any) -> None:
    sandbox, bot = stack
    i18n: I18n = load_i18n()
    c = SandboxClient.connect(sandbox.url)
    people = People(c, ADMIN_ID)
    try:
        await people.new_operation("Restart", [("PNH-1", "PNH", "ht"), ("KE-1", "MSS", "en")])
        chief = await c.create_user("Jean", language_code="ht")
        kenyan = await c.create_user("Otieno", language_code="en")
        pnh = await people.group("PNH 1", chief, [])
        ke = await people.group("KE 1", kenyan, [])
        await people.enroll(pnh, chief, await people.issue_code("chat Restart PNH-1"))
        await people.enroll(ke, kenyan, await people.issue_code("chat Restart KE-1"))
        await people.open_private(chief)
        await people.ask(
            chief, chief, "join", await people.issue_code("person Restart PNH-1 officer ht")
        )

        sent = await c.command(pnh, chief, "report")
        prompt = await c.wait_for_message(
            pnh, lambda m: bool(m.buttons), from_bot=True, after=sent.message_id, timeout=WAIT
        )
        await c.press(pnh, chief, prompt.message_id, data="rep:s:in_contact")
        await c.wait_for_message(
            pnh, lambda m: "Kenscoff" in m.button_labels, from_bot=True, timeout=WAIT
        )

        bot.stop()
        await asyncio.to_thread(bot.start)

        # The location question was on the screen: a location share answers it.
        shared = await c.send_location(pnh, chief, 18.4501, -72.2832)
        strength = await c.wait_for_message(
            pnh, lambda m: bool(m.buttons), from_bot=True, after=shared.message_id, timeout=WAIT
        )
        assert "12" in strength.button_labels
        await c.press(pnh, chief, strength.message_id, data="rep:n:12")
        await c.wait_for_message(
            pnh, contains=i18n.t("sitrep.ask_needs", "ht")[:12], from_bot=True, timeout=WAIT
        )
        typed = await c.say(pnh, chief, "Nou bezwen dlo")
        remarks = await c.wait_for_message(
            pnh, lambda m: bool(m.buttons), from_bot=True, after=typed.message_id, timeout=WAIT
        )
        await c.press(pnh, chief, remarks.message_id, data="rep:x")
        await c.wait_for_message(
            pnh, lambda m: m.message_id == remarks.message_id and "✅" in m.text, timeout=WAIT
        )
        copy = await c.wait_for_message(ke, contains="SITREP", from_bot=True, timeout=WAIT)
        # The status chosen before the restart is in the filed report.
        assert i18n.t("status.in_contact", "en") in copy.text
        assert "18.4501, -72.2832" in copy.text
        assert not [m for m in await c.history(ke) if "dlo" in m.text and "SITREP" not in m.text]
    finally:
        await c.close()
