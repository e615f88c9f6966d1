"""The operator's day end to end: cutting a lost phone off (after `/revoke`, nothing it sends
is relayed), and backing up the database of the running bot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.devtools.scenario import BotProcess, People


async def test_revoked_person_is_refused_in_their_group_and_never_relayed(
    people: People, op_name: str
) -> None:
    c = people.client
    await people.new_operation(op_name, [("PNH-R", "PNH", "ht"), ("KE-R", "MSS", "en")])
    jean = await c.create_user("Jean Revoke", language_code="ht")
    otieno = await c.create_user("Otieno Revoke", language_code="en")
    pnh = await people.group(f"{op_name} PNH", jean, [])
    ke = await people.group(f"{op_name} KE", otieno, [])
    await people.enroll(pnh, jean, await people.issue_code(f"chat {op_name} PNH-R"))
    await people.enroll(ke, otieno, await people.issue_code(f"chat {op_name} KE-R"))
    await people.open_private(jean)
    await people.ask(
        jean, jean, "join", await people.issue_code(f"person {op_name} PNH-R officer")
    )
    await c.say(pnh, jean, "Nou rive nan baz la.")
    await c.wait_for_message(ke, from_bot=True, contains="Jean Revoke", timeout=30)

    done = await people.admin_says("revoke", f"person {jean.id}", expect=str(jean.id))
    assert "cut off" in done.text

    sent = await c.say(pnh, jean, "Kote nou ye kounye a?")
    refusal = await c.wait_for_message(pnh, from_bot=True, after=sent.message_id, timeout=30)
    assert "Yo retire aksè ou" in refusal.text  # the group's language (Kreyòl)
    # His private chat is refused too, in his language.
    private = await people.ask(jean, jean, "whoami")
    assert "Yo retire aksè ou" in private.text
    # The partner group got the message from before the revocation, and nothing after it.
    copies = [m for m in await c.history(ke) if m.from_bot and "Jean Revoke" in (m.text or "")]
    assert len(copies) == 1

    # A chat cut off is no longer enrolled: its next message gets the one refusal.
    await people.admin_says("revoke", f"chat {ke.id}", expect=str(ke.id))
    asked = await c.say(ke, otieno, "Anyone there?")
    told = await c.wait_for_message(ke, from_bot=True, after=asked.message_id, timeout=30)
    assert "not enrolled" in told.text


def test_backup_of_the_running_bot_verifies_and_restore_refuses_to_overwrite_it(
    bot: BotProcess,
    e2e_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The running bot's settings: its database and its audit key (the chain is keyed).
    for name, value in bot.env().items():
        if name.startswith("DARAJA_"):
            monkeypatch.setenv(name, value)
    out = tmp_path / "live-backup.db"
    capsys.readouterr()

    assert main(["backup", "--out", str(out), "--json"]) == 0
    taken = json.loads(capsys.readouterr().out)
    assert taken["audit"]["ok"] is True

    assert main(["restore", str(out)]) == 2
    assert "a running Daraja uses" in capsys.readouterr().err
