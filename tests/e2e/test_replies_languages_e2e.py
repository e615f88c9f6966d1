"""Every interface reply a person meets while joining, checked word for word against the
catalogs, for a PNH officer (Kreyòl, French) and an MSS officer (Swahili, English)."""

from __future__ import annotations

import html
import re

import pytest

from bot.devtools.scenario import People
from bot.i18n import load_i18n

I18N = load_i18n()


def said(key: str, lang: str, /, **params: object) -> str:
    """What a person reads for a catalog entry (HTML tags removed, as Telegram shows it)."""
    text = I18N.t(key, lang, **{k: html.escape(str(v), quote=False) for k, v in params.items()})
    return html.unescape(re.sub(r"<[^>]+>", "", text))


@pytest.mark.parametrize("lang", ["ht", "sw", "fr", "en"])
async def test_joining_and_refusals_speak_the_persons_language(
    people: People, op_name: str, lang: str
) -> None:
    c = people.client
    side = "PNH" if lang in ("ht", "fr") else "MSS"
    await people.new_operation(op_name, [("U1", side, lang)])
    person = await c.create_user(f"Officer {lang}", language_code=lang)

    assert (await people.open_private(person)).text == said("start.welcome", lang)
    assert (await people.ask(person, person, "whoami")).text == said("access.not_enrolled", lang)
    assert (await people.ask(person, person, "join", "DRJ-AAAA-BBBB")).text == said(
        "code.unknown", lang
    )
    assert (await people.ask(person, person, "join")).text == said("join.usage", lang)
    assert (await people.ask(person, person, "code", "chat x y")).text == said(
        "access.not_enrolled", lang
    )
    assert (await people.ask(person, person, "lang", "xx")).text == said(
        "lang.unsupported", lang, lang="xx"
    )

    code = await people.issue_code(f"person {op_name} U1 officer {lang}")
    joined = await people.ask(person, person, "join", code)
    assert joined.text == said(
        "join.ok",
        lang,
        name=f"Officer {lang}",
        role=I18N.t("role.officer", lang),
        unit="U1",
        operation=op_name,
        language=I18N.t(f"lang.name.{lang}", lang),
    )
    assert (await people.ask(person, person, "join", code)).text == said("code.used", lang)
    assert (await people.ask(person, person, "status")).text == said(
        "access.role_required", lang, command="status"
    )
    assert (await people.ask(person, person, "log")).text == said(
        "access.role_required", lang, command="log"
    )
    sent = await c.say(person, person, "bonjou")
    plain = await c.wait_for_message(person, from_bot=True, after=sent.message_id, timeout=20)
    assert plain.text == said("private.no_relay", lang)

    # In a group: the unenrolled greeting, then enrollment, in the person's language.
    group = await c.create_group(
        f"{op_name} group",
        members=[person],
        admins=[person],
        owner=person,
        bot="member",
        supergroup=True,
    )
    greeting = await c.wait_for_message(group, from_bot=True, timeout=20)
    assert greeting.text == said("access.chat_not_enrolled", lang)
    assert (await people.ask(group, person, "enroll")).text == said("enroll.usage", lang)
    chat_code = await people.issue_code(f"chat {op_name} U1")
    enrolled = await people.enroll(group, person, chat_code)
    assert enrolled.text == said(
        "enroll.ok",
        lang,
        operation=op_name,
        unit="U1",
        languages=I18N.t(f"lang.name.{lang}", lang),
    )
