"""Enrollment, refusal of unknown chats, /help and /lang, end to end through the sandbox."""

from __future__ import annotations

import re

from bot.devtools.scenario import BotProcess, People
from tests.support.e2e import daraja


async def test_unenrolled_group_gets_one_refusal_and_nothing_else(people: People) -> None:
    c = people.client
    stranger = await c.create_user("Ti Jan", language_code="ht")
    group = await c.create_group(
        "Gwoup pa enskri",
        members=[stranger],
        admins=[stranger],
        owner=stranger,
        bot="member",
        supergroup=True,
    )
    refusal = await c.wait_for_message(group, from_bot=True, timeout=20)
    assert "pa enskri" in refusal.text  # added by a Kreyòl speaker: answered in Kreyòl
    await c.say(group, stranger, "Bonjou tout moun")
    second = await c.say(group, stranger, "Nou la?")
    # A later message gets no answer: wait for a /help answer elsewhere to be sure the bot
    # has processed the group's second message too.
    await people.open_private(stranger)
    bot_lines = [
        m for m in await c.history(group) if m.from_bot and m.message_id > second.message_id
    ]
    assert bot_lines == []


async def test_enrollment_flow_and_help_in_both_sides_languages(
    people: People, op_name: str
) -> None:
    c = people.client
    await people.new_operation(op_name, [("PNH-1", "PNH", "ht"), ("KE-1", "MSS", "en")])
    chief = await c.create_user("Jean", language_code="ht")
    kenyan = await c.create_user("Otieno", language_code="sw")
    pnh_group = await people.group("PNH 1", chief, [])
    ke_group = await people.group("KE 1", kenyan, [])
    pnh_code = await people.issue_code(f"chat {op_name} PNH-1")
    ke_code = await people.issue_code(f"chat {op_name} KE-1")
    done = await people.enroll(pnh_group, chief, pnh_code)
    assert f"operasyon <b>{op_name}</b>" in done.html or op_name in done.text
    assert "inite" in done.text  # Kreyòl: the group's language
    done_en = await people.enroll(ke_group, kenyan, ke_code)
    assert "enrolled in operation" in done_en.text
    # Reusing a code is refused in the group's language, and nothing changes.
    again = await people.enroll(ke_group, kenyan, ke_code)
    assert "already enrolled" in again.text

    # People join privately and read /help in their own language.
    person_code = await people.issue_code(f"person {op_name} KE-1 officer sw")
    greeting = await people.open_private(kenyan)
    assert "Daraja hupeleka ujumbe" in greeting.text  # Telegram language sw
    joined = await people.ask(kenyan, kenyan, "join", person_code)
    assert "Karibu, Otieno" in joined.text
    help_sw = await people.ask(kenyan, kenyan, "help")
    assert "Amri za Daraja" in help_sw.text
    assert "/flash" not in help_sw.text  # officers do not see commanders' commands
    lang = await people.ask(kenyan, kenyan, "lang", "ht")
    assert "kreyòl ayisyen" in lang.text
    who = await people.ask(kenyan, kenyan, "whoami")
    assert "polisye" in who.text  # role.officer in PNH Kreyòl ("ofisye" is a rank)
    assert "KE-1" in who.text
    # The Kreyòl-speaking PNH chief reads /help in Kreyòl (Telegram language, not enrolled).
    await people.open_private(chief)
    help_ht = await people.ask(chief, chief, "help")
    assert "Kòmand Daraja" in help_ht.text


async def test_wrong_role_and_bad_input_are_refused_clearly(people: People, op_name: str) -> None:
    c = people.client
    await people.new_operation(op_name, [("KE-2", "MSS", "en")])
    officer = await c.create_user("Wanjiru", language_code="en")
    await people.open_private(officer)
    refused = await people.ask(officer, officer, "code", f"chat {op_name} KE-2")
    assert "not enrolled" in refused.text
    bad = await people.ask(officer, officer, "join", "DRJ-AAAA-BBBB")
    assert "not valid" in bad.text
    bad_lang = await people.ask(officer, officer, "lang", "klingon")
    assert "klingon" in bad_lang.text
    assert "ht, fr, en" in bad_lang.text
    reply = await people.admin_says("addunit", f"{op_name} KE-2 MSS en")
    assert "already exists" in reply.text


# The lockout reply of each language (catalog key code.locked), as its reader sees it.
LOCKED = {
    "fr": "Trop de codes erronés",
    "ht": "Twòp kòd ki pa bon",
    "sw": "Misimbo mingi mno isiyo sahihi",
    "en": "Too many wrong codes",
}


async def test_wrong_codes_end_in_a_lockout_said_in_the_readers_language(
    people: People, op_name: str
) -> None:
    c = people.client
    await people.new_operation(op_name, [("KE-9", "MSS", "en")])
    good = await people.issue_code(f"person {op_name} KE-9 officer en")
    # /join in a private chat, in French and Kreyòl: the fifth wrong code locks.
    for lang in ("fr", "ht"):
        guesser = await c.create_user(f"Guesser {lang}", language_code=lang)
        await people.open_private(guesser)
        answers = [
            (await people.ask(guesser, guesser, "join", f"DRJ-AAAA-BBB{n}")).text
            for n in range(2, 7)
        ]
        assert all(LOCKED[lang] not in a for a in answers[:4])
        assert LOCKED[lang] in answers[4]
        assert "15" in answers[4]
        # Locked: even a good code is refused, and stays good for its owner.
        again = await people.ask(guesser, guesser, "join", good)
        assert LOCKED[lang] in again.text
    # /enroll in a group, in Swahili and English: the group admin is locked after five.
    for lang in ("sw", "en"):
        admin = await c.create_user(f"Admin {lang}", language_code=lang)
        group = await people.group(f"{op_name} {lang}", admin, [])
        replies = [
            (await people.ask(group, admin, "enroll", f"DRJ-CCCC-DDD{n}")).text
            for n in range(2, 7)
        ]
        assert all(LOCKED[lang] not in r for r in replies[:4])
        assert LOCKED[lang] in replies[4]
    owner = await c.create_user("Owner", language_code="en")
    await people.open_private(owner)
    joined = await people.ask(owner, owner, "join", good)
    assert "Welcome, Owner" in joined.text


async def test_an_auditor_without_a_unit_is_welcomed_without_a_blank_unit(
    people: People, op_name: str, bot: BotProcess
) -> None:
    c = people.client
    await people.new_operation(op_name, [("PNH-8", "PNH", "ht")])
    # Codes without a unit come from the server's shell (`daraja admin code person OP`).
    issued = await daraja(
        *("admin", "code", "person", op_name, "--role", "auditor", "--languages", "fr"),
        env=bot.env(),
        cwd=bot.workdir,
    )
    assert issued.returncode == 0, issued.stderr
    code = re.search(r"DRJ-[A-Z0-9]{4}-[A-Z0-9]{4}", issued.stdout)
    assert code is not None, issued.stdout
    auditor = await c.create_user("Claire", language_code="fr")
    await people.open_private(auditor)
    joined = await people.ask(auditor, auditor, "join", code.group(0))
    assert f"auditeur dans l'opération {op_name}, sans rattachement à une unité" in joined.text
    assert "unité -" not in joined.text
    who = await people.ask(auditor, auditor, "whoami")
    assert f"opération {op_name}, sans unité" in who.text
