"""SITREPs, the status board, /where and FLASH acknowledgements, end to end through the sandbox:
people tap and type in Telegram; the bot answers in each reader's language."""

from __future__ import annotations

from typing import Any

import pytest

from bot.devtools.scenario import WAIT, People
from bot.i18n import I18n, load_i18n


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


async def _commander(people: People, op_name: str, lang: str) -> Any:
    """A commander enrolled privately (on the HQ unit, which has no group)."""
    c = people.client
    commander = await c.create_user("Mwangi", language_code=lang)
    code = await people.issue_code(f"person {op_name} HQ commander {lang}")
    await people.open_private(commander)
    await people.ask(commander, commander, "join", code)
    return commander


async def _prompt(people: People, group: Any, after: int) -> Any:
    """The bot's next message in a group that carries buttons (a SITREP question)."""
    return await people.client.wait_for_message(
        group, lambda m: bool(m.buttons), from_bot=True, after=after, timeout=WAIT
    )


async def test_sitrep_by_taps_reaches_the_partner_group_and_the_board(
    people: People, op_name: str, i18n: I18n
) -> None:
    c = people.client
    await people.new_operation(
        op_name, [("PNH-1", "PNH", "ht"), ("KE-1", "MSS", "en"), ("HQ", "MSS", "en")]
    )
    chief = await c.create_user("Jean", language_code="ht")
    kenyan = await c.create_user("Otieno", language_code="en")
    pnh = await people.group("PNH 1", chief, [])
    ke = await people.group("KE 1", kenyan, [])
    await people.enroll(pnh, chief, await people.issue_code(f"chat {op_name} PNH-1"))
    await people.enroll(ke, kenyan, await people.issue_code(f"chat {op_name} KE-1"))
    commander = await _commander(people, op_name, "sw")
    # Filing a SITREP takes an enrolled officer (the gate checks roles for commands).
    await people.open_private(chief)
    code = await people.issue_code(f"person {op_name} PNH-1 officer ht")
    await people.ask(chief, chief, "join", code)

    # /report: the statuses come as Kreyòl buttons.
    sent = await c.command(pnh, chief, "report")
    prompt = await _prompt(people, pnh, sent.message_id)
    assert i18n.t("status.in_contact", "ht") in " ".join(prompt.button_labels)
    await c.press(pnh, chief, prompt.message_id, data="rep:s:in_contact")
    asked = await c.wait_for_message(
        pnh, lambda m: "Kenscoff" in m.button_labels, from_bot=True, timeout=WAIT
    )
    # An impossible coordinate is refused in Kreyòl; then a location share is taken.
    bad = await c.say(pnh, chief, "95.1,-200")
    refusal = await c.wait_for_message(pnh, from_bot=True, after=bad.message_id, timeout=WAIT)
    assert "Kowòdone" in refusal.text
    shared = await c.send_location(pnh, chief, 18.4501, -72.2832)
    strength = await _prompt(people, pnh, shared.message_id)
    assert "12" in strength.button_labels
    negative = await c.say(pnh, chief, "-3")
    refusal = await c.wait_for_message(pnh, from_bot=True, after=negative.message_id, timeout=WAIT)
    assert refusal.text == i18n.t("sitrep.bad_strength", "ht")
    await c.press(pnh, chief, strength.message_id, data="rep:n:12")
    needs_prompt = await c.wait_for_message(
        pnh, contains=i18n.t("sitrep.ask_needs", "ht")[:12], from_bot=True, timeout=WAIT
    )
    typed = await c.say(pnh, chief, "Nou bezwen minisyon")
    remarks = await _prompt(people, pnh, typed.message_id)
    await c.press(pnh, chief, remarks.message_id, data="rep:x")
    filed = await c.wait_for_message(
        pnh, lambda m: m.message_id == remarks.message_id and "✅" in m.text, timeout=WAIT
    )
    assert "PNH-1" in filed.text
    assert needs_prompt.message_id < filed.message_id
    assert asked.message_id > sent.message_id

    # The English group gets the SITREP: status word from the catalog, strength, location.
    copy = await c.wait_for_message(ke, contains="SITREP", from_bot=True, timeout=WAIT)
    assert i18n.t("status.in_contact", "en") in copy.text
    assert "18.4501, -72.2832" in copy.text
    assert "12" in copy.text
    # The wizard's answers were not relayed as messages.
    assert not [m for m in await c.history(ke) if "minisyon" in m.text and "SITREP" not in m.text]

    # The commander reads the board and /where in Swahili.
    board = await people.ask(commander, commander, "status")
    assert i18n.t("status.in_contact", "sw") in board.text
    assert "KE-1" in board.text
    assert i18n.t("board.no_report", "sw") in board.text
    where = await people.ask(commander, commander, "where", "PNH-1")
    assert "18.4501, -72.2832" in where.text
    unknown = await people.ask(commander, commander, "where", "ZZ-9")
    assert "ZZ-9" in unknown.text

    # The one-line form, and an officer who may not read the board.
    officer_code = await people.issue_code(f"person {op_name} KE-1 officer en")
    await people.open_private(kenyan)
    await people.ask(kenyan, kenyan, "join", officer_code)
    line = await c.command(ke, kenyan, "report", "at_position Furcy 6 water | road clear")
    done = await c.wait_for_message(ke, from_bot=True, after=line.message_id, timeout=WAIT)
    assert "✅" in done.text
    assert i18n.t("status.at_position", "en") in done.text
    refused = await people.ask(kenyan, kenyan, "status")
    assert "/status" in refused.text or "status" in refused.text
    assert i18n.t("status.in_contact", "en") not in refused.text


async def test_flash_to_four_languages_is_acknowledged_unit_by_unit(
    people: People, op_name: str, i18n: I18n
) -> None:
    c = people.client
    units = [
        ("PNH-1", "PNH", "ht"),
        ("PNH-2", "PNH", "fr"),
        ("KE-1", "MSS", "en"),
        ("KE-2", "MSS", "sw"),
    ]
    await people.new_operation(op_name, [*units, ("HQ", "MSS", "en")])
    groups: dict[str, Any] = {}
    owners: dict[str, Any] = {}
    for code, _side, lang in units:
        owner = await c.create_user(f"Chef {code}", language_code=lang)
        owners[code] = owner
        groups[code] = await people.group(code, owner, [])
        await people.enroll(groups[code], owner, await people.issue_code(f"chat {op_name} {code}"))
    commander = await _commander(people, op_name, "sw")

    officer_in_pnh = await c.create_user("Officer Koech", language_code="en")
    await c.join(groups["PNH-2"], officer_in_pnh)
    await people.open_private(officer_in_pnh)
    code = await people.issue_code(f"person {op_name} KE-1 officer en")
    await people.ask(officer_in_pnh, officer_in_pnh, "join", code)

    # An officer may not send a FLASH.
    refused = await people.ask(officer_in_pnh, officer_in_pnh, "flash", "Everyone move")
    assert "flash" in refused.text

    sent = await people.ask(commander, commander, "flash", "All units hold position at Kenscoff")
    assert "PNH-1" in sent.text
    copies: dict[str, Any] = {}
    for code, _side, lang in units:
        copy = await c.wait_for_message(
            groups[code], lambda m: bool(m.buttons), from_bot=True, timeout=WAIT
        )
        assert i18n.t("flash.label", lang) in copy.text
        assert copy.button_labels == [i18n.t("flash.ack_button", lang)]
        copies[code] = copy

    # Someone enrolled to KE-1 cannot acknowledge for PNH-2.
    query = await c.press(
        groups["PNH-2"],
        officer_in_pnh,
        copies["PNH-2"].message_id,
        text=i18n.t("flash.ack_button", "fr"),
    )
    answer = await c.wait_for_answer(query, timeout=WAIT)
    assert answer["text"] == i18n.t("flash.ack_other_unit", "fr", unit="KE-1")

    for code, _side, lang in units:
        copy = copies[code]
        query = await c.press(
            groups[code], owners[code], copy.message_id, data=copy.buttons[0][0]["callback_data"]
        )
        answer = await c.wait_for_answer(query, timeout=WAIT)
        assert answer["text"] == i18n.t("flash.ack_ok", lang, unit=code)
        edited = await c.wait_for_message(
            groups[code],
            lambda m, mid=copy.message_id: m.message_id == mid and m.edited,
            timeout=WAIT,
        )
        assert "✅" in edited.text
        assert f"Chef {code}" in edited.text
        assert edited.buttons == []

    acks = await people.ask(commander, commander, "acks")
    assert "4" in acks.text.split("\n")[0]
    for code, _side, _lang in units:
        assert f"{code}: Chef {code}" in acks.text
