"""Retention end to end: an officer's message past its period loses its body, and the auditor's
`/log` still shows who wrote it, when and where, with a dated note in place of the text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.devtools.scenario import BotProcess, People
from tests.support.e2e import daraja


def _age_messages(db_path: Path, marker: str, days: int) -> int:
    """Make the messages holding `marker` (and their translations) `days` older."""
    with sqlite3.connect(db_path, timeout=30) as conn:
        ids = [
            r[0]
            for r in conn.execute("SELECT id FROM messages WHERE text LIKE ?", (f"%{marker}%",))
        ]
        for table, key in (("messages", "id"), ("translations", "message_id")):
            conn.execute(
                f"UPDATE {table} SET created_at = datetime(created_at, ?) "
                f"WHERE {key} IN ({','.join('?' * len(ids))})",
                (f"-{days} days", *ids),
            )
    return len(ids)


async def test_a_purged_message_keeps_its_place_in_the_log(
    people: People, op_name: str, bot: BotProcess, e2e_dir: Path
) -> None:
    c = people.client
    await people.new_operation(op_name, [("PNH-R", "PNH", "ht"), ("KE-R", "MSS", "en")])
    groups = {}
    for code, name, lang in (("PNH-R", "Jean", "ht"), ("KE-R", "Otieno", "en")):
        person = await c.create_user(name, language_code=lang)
        group = await people.group(f"{op_name} {code}", person, [])
        await people.enroll(group, person, await people.issue_code(f"chat {op_name} {code}"))
        groups[code] = (group, person)
    mark = (await c.history(groups["PNH-R"][0]))[-1].message_id
    await c.say(groups["KE-R"][0], groups["KE-R"][1], f"Roadblock {op_name}_R cleared at 0600")
    await c.wait_for_message(
        groups["PNH-R"][0], from_bot=True, after=mark, contains=f"{op_name}_R", timeout=30
    )
    db_path = e2e_dir / "data" / "daraja.db"
    assert _age_messages(db_path, f"{op_name}_R", days=40) == 1
    purge = await daraja(
        "db",
        "purge",
        env={**bot.env(), "DARAJA_MESSAGE_RETENTION_DAYS": "30"},
        cwd=bot.workdir,
    )
    assert purge.returncode == 0, purge.stderr
    assert "purged messages: " in purge.stdout

    auditor = await c.create_user("Inspectorate", language_code="en")
    await people.open_private(auditor)
    await people.ask(
        auditor, auditor, "join", await people.issue_code(f"person {op_name} KE-R auditor en")
    )
    page = await people.ask(auditor, auditor, "log", "KE-R")
    assert "Otieno" in page.text
    assert "Content removed on" in page.text
    assert f"{op_name}_R" not in page.text
    assert "Roadblock" not in page.text
