"""At Telegram's real rates the bot's limiter keeps every chat under its limits and still
delivers everything (the sandbox enforces Telegram's flood control and counts every send)."""

from __future__ import annotations

from pathlib import Path

from bot.devtools.sandbox.client import SandboxClient
from bot.devtools.scenario import People
from tests.support.e2e import ADMIN_ID, TOKEN
from tests.support.processes import BotProcess, SandboxProcess

MESSAGES = 12


async def test_real_rates_keep_chats_under_limits_and_deliver_all(
    tmp_path: Path, models_dir: Path
) -> None:
    sandbox = SandboxProcess(tmp_path, TOKEN).start()  # Telegram's flood limits enforced
    bot = BotProcess(
        tmp_path,
        sandbox.url,
        models_dir,
        f"sqlite+aiosqlite:///{tmp_path}/rates.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),  # default rates: 1/s per chat, 20/min per group
    ).start()
    client = SandboxClient.connect(sandbox.url)
    try:
        people = People(client, ADMIN_ID)
        await people.new_operation(
            "Rates", [("R1", "PNH", "ht"), ("R2", "MSS", "en"), ("R3", "MSS", "sw")]
        )
        chats = []
        for code, lang in (("R1", "ht"), ("R2", "en"), ("R3", "sw")):
            officer = await client.create_user(f"Officer {code}", language_code=lang)
            group = await people.group(f"Rates {code}", officer, [])
            await people.enroll(group, officer, await people.issue_code(f"chat Rates {code}"))
            chats.append((group, officer))
        source, officer = chats[0]
        for n in range(MESSAGES):
            await client.say(source, officer, f"Rapò #{n}")
        for group, _ in chats[1:]:
            await client.wait_for(
                group,
                lambda history: (
                    sum("Rapò #" in (m.text or "") for m in history if m.from_bot) >= MESSAGES
                ),
                timeout=120,
            )
        for group, _ in chats[1:]:
            assert await client.peak_sends(group, 1.0) <= 1
            assert await client.peak_sends(group, 60.0) <= 20
        refused = [r for r in await client.requests() if r.status == 429]
    finally:
        await client.close()
        bot.stop()
        sandbox.stop()
    assert refused == []  # the limiter paced the bot: Telegram never had to say 429
