"""The bot token never appears in the logs of the session's bot and sandbox.

Both processes write to files in the e2e directory; the bot logs through `daraja run` (polling,
INFO). The people here do the things that make the bot call the Bot API the most (commands,
group enrollment, a relayed message), then every log is searched for anything token-shaped.
A session-scoped check repeats the search once every e2e test of the session has run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.devtools.scenario import People
from tests.support.e2e import ADMIN_ID, TOKEN
from tests.support.processes import BotProcess, SandboxProcess

TOKEN_SHAPE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")


def _leaks(e2e_dir: Path, bot: BotProcess) -> dict[str, list[str]]:
    """Token-shaped strings (and the literal token) per log file."""
    texts = {"bot": bot.logs()}
    for path in sorted(e2e_dir.glob("*.log")):
        texts[path.name] = path.read_text(errors="replace")
    return {
        name: TOKEN_SHAPE.findall(text) + ([TOKEN] if TOKEN in text else [])
        for name, text in texts.items()
        if TOKEN_SHAPE.search(text) or TOKEN in text
    }


@pytest.fixture(scope="session", autouse=True)
def _no_token_at_session_end(
    e2e_dir: Path, sandbox: SandboxProcess, bot: BotProcess
) -> Iterator[None]:
    """After every e2e test of the session: the logs they produced hold no token."""
    yield
    assert _leaks(e2e_dir, bot) == {}


async def test_no_token_in_bot_or_sandbox_logs(
    people: People, op_name: str, e2e_dir: Path, bot: BotProcess
) -> None:
    c = people.client
    await people.new_operation(op_name, [("PNH-L", "PNH", "ht"), ("KE-L", "MSS", "en")])
    groups = {}
    for code, name, lang in (("PNH-L", "Jean", "ht"), ("KE-L", "Otieno", "en")):
        person = await c.create_user(name, language_code=lang)
        group = await people.group(f"{op_name} {code}", person, [])
        await people.enroll(group, person, await people.issue_code(f"chat {op_name} {code}"))
        groups[code] = (group, person)
    mark = (await c.history(groups["KE-L"][0]))[-1].message_id
    # An officer pastes something token-shaped: it is relayed, but message text is never
    # logged at INFO, so it must not show up in the logs either.
    await c.say(groups["PNH-L"][0], groups["PNH-L"][1], f"Kod la se {TOKEN} 10:05")
    await c.wait_for_message(
        groups["KE-L"][0], from_bot=True, after=mark, contains="10:05", timeout=30
    )
    logs = bot.logs()
    assert "Daraja is running" in logs  # the log is the bot's and it was read
    assert (e2e_dir / "sandbox.log").exists()
    assert _leaks(e2e_dir, bot) == {}


async def test_data_files_are_readable_by_the_bots_user_only(
    people: People, op_name: str, e2e_dir: Path, bot: BotProcess
) -> None:
    """The database holds police traffic: its directory is 0700, the database and the
    -wal and -shm files SQLite makes next to it 0600, while the bot runs."""
    import stat

    await people.new_operation(op_name, [("PNH-P", "PNH", "ht")])  # the bot has written
    data = e2e_dir / "data"
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in [data, *data.iterdir()]
        if p.name.startswith(("data", "daraja.db"))
    }
    assert {"data", "daraja.db", "daraja.db-wal", "daraja.db-shm"} <= set(modes)
    assert modes.pop("data") == 0o700
    assert set(modes.values()) == {0o600}, modes


def test_a_rejected_token_is_named_not_printed(
    tmp_path: Path, sandbox: SandboxProcess, models_dir: Path
) -> None:
    """Telegram refuses the token: one line naming the setting, exit 2, and the token is in
    none of what the bot printed."""
    rejected = "123456789:AArejected-token-for-the-log-test"
    proc = BotProcess(
        tmp_path,
        sandbox.url,
        models_dir,
        f"sqlite+aiosqlite:///{tmp_path}/rejected.db",
        token=rejected,
        admin_ids=str(ADMIN_ID),
    )
    with pytest.raises(RuntimeError, match="bot exited with 2"):
        proc.start()
    output = proc.logs()
    assert "DARAJA_TELEGRAM_TOKEN: the Bot API rejected the token" in output
    assert "Traceback" not in output
    assert "AArejected" not in output
    # This bot had no audit key: it said so before anything else.
    assert "WARNING daraja: !!! DARAJA_AUDIT_HMAC_KEY is not set" in output
