"""Long copies end to end: every part of a split copy says whose it is and where it sits, edits
leave exactly the new text in every partner group, and a message of several known sentences
with spans arrives exactly translated."""

from __future__ import annotations

import re
from typing import Any

from bot.devtools.scenario import People

UNITS = [
    ("PNH-A", "PNH", "ht", "Jean"),
    ("PNH-B", "PNH", "fr", "Marie"),
    ("KE-A", "MSS", "en", "Otieno"),
    ("KE-B", "MSS", "sw", "Wanjiru"),
]
PARTNERS = ("PNH-A", "PNH-B", "KE-B")
# A phrasebook sentence many times over with different spans: about 3,900 characters, which
# a copy (translation plus the quoted original) carries in two or three parts.
LONG = " ".join(f"Unit KE-{i} arrived at Kenscoff." for i in range(120))
SHORT = "Roger."
# What each partner group reads: the long message's sentence, and the short one.
ARRIVED = {"PNH-A": "rive Kenscoff.", "PNH-B": "est arrivée à Kenscoff.", "KE-B": "kimefika"}
ROGER = {"PNH-A": "Resevwa.", "PNH-B": "Reçu.", "KE-B": "Nimepokea."}
POSITION = re.compile(r"^Otieno · KE-A · MSS(?: · [^\n(]+)? \((\d+)/(\d+)\)\n")


async def _operation(people: People, op_name: str) -> dict[str, Any]:
    c = people.client
    await people.new_operation(op_name, [(u[0], u[1], u[2]) for u in UNITS])
    world: dict[str, Any] = {}
    for code, _side, lang, name in UNITS:
        person = await c.create_user(name, language_code=lang)
        group = await people.group(f"{op_name} {code}", person, [])
        await people.enroll(group, person, await people.issue_code(f"chat {op_name} {code}"))
        world[code] = {"group": group, "person": person}
    return world


async def _marks(people: People, world: dict[str, Any]) -> dict[str, int]:
    return {
        code: (await people.client.history(w["group"]))[-1].message_id for code, w in world.items()
    }


async def _copy_parts(people: People, group: Any, after: int, done: Any) -> list[Any]:
    """The bot's messages after `after` once `done(messages)` holds."""

    def bot_after(history: list[Any]) -> list[Any]:
        return [m for m in history if m.from_bot and m.message_id > after]

    history = await people.client.wait_for(group, lambda h: bool(done(bot_after(h))), timeout=60)
    return bot_after(history)


def _complete(count: int, marker: str) -> Any:
    """A predicate: a split copy whose parts all arrived and carry `marker` `count` times."""

    def done(parts: list[Any]) -> bool:
        found = [POSITION.match(p.text) for p in parts]
        return (
            len(parts) > 1
            and all(found)
            and {int(m.group(2)) for m in found if m} == {len(parts)}
            and sum(p.text.count(marker) for p in parts) == count
        )

    return done


def _assert_numbered(parts: list[Any]) -> None:
    total = len(parts)
    for number, part in enumerate(parts, 1):
        found = POSITION.match(part.text)
        assert found, part.text[:80]
        assert (int(found.group(1)), int(found.group(2))) == (number, total)


async def test_every_part_of_a_split_copy_starts_with_its_author_and_position(
    people: People, op_name: str
) -> None:
    world = await _operation(people, op_name)
    marks = await _marks(people, world)
    ke = world["KE-A"]
    await people.client.say(ke["group"], ke["person"], LONG)
    for code in PARTNERS:
        parts = await _copy_parts(
            people, world[code]["group"], marks[code], _complete(120, ARRIVED[code])
        )
        assert len(parts) >= 2
        _assert_numbered(parts)


async def test_long_edited_to_short_leaves_only_the_short_text(
    people: People, op_name: str
) -> None:
    c = people.client
    world = await _operation(people, op_name)
    marks = await _marks(people, world)
    ke = world["KE-A"]
    sent = await c.say(ke["group"], ke["person"], LONG)
    for code in PARTNERS:
        await _copy_parts(people, world[code]["group"], marks[code], _complete(120, ARRIVED[code]))

    await c.edit(ke["group"], ke["person"], sent.message_id, SHORT)

    for code in PARTNERS:
        # 0 stale parts: one message left, the short text, nothing of the long one.
        [copy] = await _copy_parts(
            people,
            world[code]["group"],
            marks[code],
            lambda parts, code=code: len(parts) == 1 and ROGER[code] in parts[0].text,
        )
        assert "Kenscoff" not in copy.text
        assert copy.text.startswith("Otieno · KE-A · MSS")


async def test_short_edited_to_long_carries_the_whole_new_text(
    people: People, op_name: str
) -> None:
    c = people.client
    world = await _operation(people, op_name)
    marks = await _marks(people, world)
    ke = world["KE-A"]
    sent = await c.say(ke["group"], ke["person"], SHORT)
    firsts = {}
    for code in PARTNERS:
        [first] = await _copy_parts(
            people, world[code]["group"], marks[code], lambda parts: len(parts) == 1
        )
        firsts[code] = first.message_id

    await c.edit(ke["group"], ke["person"], sent.message_id, LONG)

    for code in PARTNERS:
        parts = await _copy_parts(
            people, world[code]["group"], marks[code], _complete(120, ARRIVED[code])
        )
        assert parts[0].message_id == firsts[code]  # the first part is the copy, edited
        assert not any(ROGER[code] in p.text for p in parts)
        _assert_numbered(parts)


async def test_parts_too_old_to_delete_are_marked_replaced(people: People, op_name: str) -> None:
    c = people.client
    world = await _operation(people, op_name)
    marks = await _marks(people, world)
    ke = world["KE-A"]
    sent = await c.say(ke["group"], ke["person"], LONG)
    counts = {}
    for code in PARTNERS:
        parts = await _copy_parts(
            people, world[code]["group"], marks[code], _complete(120, ARRIVED[code])
        )
        counts[code] = len(parts)
        await c.age_messages(world[code]["group"], 49 * 3600)  # past deleteMessage's limit

    await c.edit(ke["group"], ke["person"], sent.message_id, SHORT)

    replaced = {
        "PNH-A": "(ranplase: gade pi wo)",
        "PNH-B": "(remplacé : voir ci-dessus)",
        "KE-B": "(imebadilishwa: tazama hapo juu)",
    }
    for code in PARTNERS:

        def done(parts: list[Any], code: str = code) -> bool:
            return ROGER[code] in parts[0].text and all(
                replaced[code] in p.text for p in parts[1:]
            )

        parts = await _copy_parts(people, world[code]["group"], marks[code], done)
        assert len(parts) == counts[code]
        assert not any("Kenscoff" in p.text for p in parts)  # no stale text left readable


# Three phrasebook sentences with spans; the second and third are numbered from [0] again
# before the model sees them, so each comes out as it would alone.
THREE = {
    "ht": "Inite KE-3 rive Kenscoff. 2 blese ak 1 mò nan 14:30. "
    "Nou bezwen evakyasyon medikal nan 18.5392,-72.3364.",
    "fr": "L'unité KE-3 est arrivée à Kenscoff. 2 blessés et 1 morts à 14:30. "
    "Nous avons besoin d'une évacuation médicale à 18.5392,-72.3364.",
    "en": "Unit KE-3 arrived at Kenscoff. 2 wounded and 1 dead at 14:30. "
    "We need a medevac at 18.5392,-72.3364.",
    "sw": "Kikosi KE-3 kimefika Kenscoff. Huko 14:30, majeruhi 2 na waliokufa 1. "
    "Tunahitaji uokoaji wa matibabu 18.5392,-72.3364.",
}
LANGUAGE = {"PNH-A": "ht", "PNH-B": "fr", "KE-A": "en", "KE-B": "sw"}


async def test_three_known_sentences_with_spans_arrive_exactly_translated(
    people: People, op_name: str
) -> None:
    c = people.client
    world = await _operation(people, op_name)
    marks = await _marks(people, world)
    jean = world["PNH-A"]
    await c.say(jean["group"], jean["person"], THREE["ht"])
    for code in ("PNH-B", "KE-A", "KE-B"):
        copy = await c.wait_for_message(
            world[code]["group"],
            from_bot=True,
            after=marks[code],
            contains=THREE[LANGUAGE[code]],
            timeout=30,
        )
        assert "⚠" not in copy.text  # not repaired, not doubtful
