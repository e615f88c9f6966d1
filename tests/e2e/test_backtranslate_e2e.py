"""The sender's back-translation check end to end: a PNH group turns it on, an officer's order
comes back to the group as partners read it, translated back into Kreyòl by the fixture models."""

from __future__ import annotations

from bot.devtools.scenario import People


async def test_a_group_with_back_translation_sees_what_partners_read(
    people: People, op_name: str
) -> None:
    c = people.client
    await people.new_operation(op_name, [("PNH-A", "PNH", "ht"), ("KE-A", "MSS", "en")])
    jean = await c.create_user("Jean", language_code="ht")
    pierre = await c.create_user("Pierre", language_code="ht")
    otieno = await c.create_user("Otieno", language_code="en")
    pnh = await people.group(f"{op_name} PNH-A", jean, [pierre])
    ke = await people.group(f"{op_name} KE-A", otieno, [])
    await people.enroll(pnh, jean, await people.issue_code(f"chat {op_name} PNH-A"))
    await people.enroll(ke, otieno, await people.issue_code(f"chat {op_name} KE-A"))

    # A member who is not a group admin may not turn it on; the setting stays off.
    refused = await people.ask(pnh, pierre, "backtranslate", "on")
    assert "Se sèlman yon administratè" in refused.text
    state = await people.ask(pnh, pierre, "backtranslate")
    assert state.text.startswith("Tradiksyon retou a etenn")  # Kreyòl: off

    # The group's admin turns it on.
    done = await people.ask(pnh, jean, "backtranslate", "on")
    assert done.text.startswith("Tradiksyon retou a limen kounye a")  # Kreyòl: now on

    mark_ke = (await c.history(ke))[-1].message_id
    said = await c.say(pnh, jean, "Nou bezwen ranfò.")
    check = await c.wait_for_message(
        pnh, from_bot=True, after=said.message_id, contains="Sa patnè yo li", timeout=30
    )
    assert check.reply_to == said.message_id  # answers the officer's own message
    assert "en: Nou bezwen ranfò." in check.text  # what the MSS group read, read back
    copy = await c.wait_for_message(
        ke, from_bot=True, after=mark_ke, contains="We need reinforcements.", timeout=30
    )
    assert "Jean" in copy.text
