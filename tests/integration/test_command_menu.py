"""The bot's command menu: one per scope and language, from the catalogs, accepted by the
sandbox exactly as the Bot API accepts it (scopes, language codes, chats that must exist)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)

from bot.delivery.command_menu import set_menus
from bot.devtools.sandbox import FloodLimits, Sandbox
from bot.i18n import load_i18n


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(flood=FloodLimits(enabled=False)) as sandbox:
        yield sandbox


async def _names(bot: Bot, scope: object, language: str | None) -> list[tuple[str, str]]:
    got = await bot.get_my_commands(scope=scope, language_code=language)  # type: ignore[arg-type]
    return [(c.command, c.description) for c in got]


async def test_each_scope_gets_its_commands_in_each_language(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.delivery.command_menu")
    i18n = load_i18n()
    admin = await sb.client.create_user("Admin", language_code="fr")
    await sb.client.start(admin)  # an admin who wrote to the bot gets their own menu
    stranger = await sb.client.create_user("Never wrote")
    async with Bot(sb.token, base_url=f"{sb.url}/bot") as bot:
        done = await set_menus(bot, i18n, default_language="fr", admin_ids=[admin.id, stranger.id])
        assert done == 20  # 4 scopes x 5 languages; the stranger's chat does not exist yet
        # The stranger's scope is refused once, logged once, not tried in its other languages.
        refusals = [r for r in caplog.records if "command menu for chat not set" in r.getMessage()]
        assert len(refusals) == 1

        private_sw = await _names(bot, BotCommandScopeAllPrivateChats(), "sw")
        assert [n for n, _ in private_sw] == ["help", "whoami", "lang", "join"]
        assert private_sw[3][1] == i18n.t("help.join", "sw")
        # Without a language: the deployment's default language (here French).
        private_any = await _names(bot, BotCommandScopeAllPrivateChats(), None)
        assert private_any[3][1] == i18n.t("help.join", "fr")
        groups_ht = await _names(bot, BotCommandScopeAllGroupChats(), "ht")
        assert [n for n, _ in groups_ht] == ["help", "report", "how"]
        assert groups_ht[1][1] == i18n.t("help.report", "ht")
        group_admins = await _names(bot, BotCommandScopeAllChatAdministrators(), "en")
        assert "enroll" in [n for n, _ in group_admins]
        admins = await _names(bot, BotCommandScopeChat(admin.id), "fr")
        assert {"newop", "code", "log", "status"} <= {n for n, _ in admins}
        assert await _names(bot, BotCommandScopeChat(admin.id), "en") != admins


async def test_the_sandbox_refuses_what_the_bot_api_refuses(sb: Sandbox) -> None:
    from telegram.error import BadRequest

    async with Bot(sb.token, base_url=f"{sb.url}/bot") as bot:
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.get_my_commands(scope=BotCommandScopeChat(424242))
        with pytest.raises(BadRequest, match=r"(?i)invalid language code"):
            await bot.get_my_commands(language_code="hat")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PTB would rather we called get_my_commands
            with pytest.raises(BadRequest, match=r"(?i)can.t parse BotCommandScope"):
                await bot.do_api_request(
                    "getMyCommands", api_kwargs={"scope": '{"type": "all_channels"}'}
                )
