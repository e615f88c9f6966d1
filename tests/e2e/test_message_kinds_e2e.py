"""Message kinds end to end: media with captions, places, polls, forwards, mixed groups."""

from __future__ import annotations

from typing import Any

from bot.devtools.scenario import People


async def _two_groups(people: People, op_name: str, *, mixed: str | None = None) -> Any:
    c = people.client
    await people.new_operation(op_name, [("P1", "PNH", "ht"), ("M1", "MSS", "en")])
    pnh_officer = await c.create_user("Rose", language_code="ht")
    mss_officer = await c.create_user("Kamau", language_code="en")
    pnh = await people.group(f"{op_name} P1", pnh_officer, [])
    mss = await people.group(f"{op_name} M1", mss_officer, [])
    await people.enroll(pnh, pnh_officer, await people.issue_code(f"chat {op_name} P1"))
    langs = f" {mixed}" if mixed else ""
    await people.enroll(mss, mss_officer, await people.issue_code(f"chat {op_name} M1{langs}"))
    return pnh, pnh_officer, mss, mss_officer


async def _last_id(people: People, chat: Any) -> int:
    return int((await people.client.history(chat))[-1].message_id)


async def test_photo_location_venue_poll_and_forward_are_relayed(
    people: People, op_name: str
) -> None:
    c = people.client
    pnh, rose, mss, _ = await _two_groups(people, op_name)
    mark = await _last_id(people, mss)
    await c.send_photo(pnh, rose, caption="Machin blende a nan Furcy")
    photo = await c.wait_for_message(mss, from_bot=True, after=mark, timeout=30)
    assert photo.kind == "photo"
    assert "Rose" in (photo.text or "")
    assert "Machin blende a nan Furcy" in (photo.text or "")
    mark = await _last_id(people, mss)
    await c.send_location(pnh, rose, 18.5392, -72.3364)
    place = await c.wait_for_message(mss, from_bot=True, after=mark, timeout=30)
    assert place.kind == "location"
    assert place.media["location"]["latitude"] == 18.5392
    # The place is followed by who sent it, as a reply to it.
    header = await c.wait_for_message(
        mss, from_bot=True, after=place.message_id, contains="Rose", timeout=30
    )
    assert header.reply_to == place.message_id
    mark = await _last_id(people, mss)
    await c.send_venue(pnh, rose, 18.41, -72.29, "Lekòl Furcy", "Route de Furcy")
    venue = await c.wait_for_message(mss, from_bot=True, after=mark, timeout=30)
    assert venue.kind == "venue"
    await c.wait_for_message(
        mss, from_bot=True, after=venue.message_id, contains="Rose", timeout=30
    )
    mark = await _last_id(people, mss)
    await c.send_poll(pnh, rose, "Ki lè nou pati?", ["14:00", "15:00"])
    poll = await c.wait_for_message(mss, from_bot=True, after=mark, contains="14:00", timeout=30)
    assert "Ki lè nou pati?" in poll.text
    mark = await _last_id(people, mss)
    await c.forward(pnh, rose, "Mesaj soti nan CIMO", from_name="CIMO Sant")
    fwd = await c.wait_for_message(
        mss, from_bot=True, after=mark, contains="CIMO Sant", timeout=30
    )
    assert "Mesaj soti nan CIMO" in fwd.text


async def test_mixed_group_answers_in_place(people: People, op_name: str) -> None:
    c = people.client
    pnh, _rose, mixed, kamau = await _two_groups(people, op_name, mixed="en+ht")
    mark = await _last_id(people, mixed)
    said = await c.say(mixed, kamau, "We hold the checkpoint at Furcy")
    note = await c.wait_for_message(mixed, from_bot=True, after=mark, timeout=30)
    assert note.reply_to == said.message_id  # the annotation answers the message in place
    assert "ht:" in note.text
    # The PNH group gets the message as a normal copy.
    copy = await c.wait_for_message(pnh, from_bot=True, contains="Kamau", timeout=30)
    assert "We hold the checkpoint at Furcy" in copy.text
    # Commands in the mixed group are not annotated: after the command, the bot's only
    # message that is not about the earlier message is the answer. (The sender's back-check
    # of the earlier message, a reply to it, may land in this same group at any time.)
    command = await c.command(mixed, kamau, "help")
    answer = await c.wait_for_message(
        mixed,
        lambda m: m.reply_to != said.message_id,
        from_bot=True,
        after=command.message_id,
        timeout=30,
    )
    later = [
        m
        for m in await c.history(mixed)
        if m.from_bot and m.message_id > command.message_id and m.reply_to != said.message_id
    ]
    assert [m.message_id for m in later] == [answer.message_id]
