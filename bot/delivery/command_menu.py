"""The bot's command menu (setMyCommands): per scope and per language, from the catalogs.

Telegram shows a chat the most specific menu set for it: a group admin's (all chat
administrators) over a group member's (all group chats); in private chats, a Daraja admin's
own chat over everyone's (all private chats). Each scope gets one menu per catalog language
(`language_code`, matched to the person's Telegram app language) plus one without a language
for everyone else, in the deployment's default language. Commands a role may not run are still
refused by the gate: the menu only suggests.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.i18n import SUPPORTED, I18n

log = logging.getLogger(__name__)

# What each kind of chat is for: private basics, officers' group commands, what a group's own
# admins add (binding it, back-translation), and the deployment admins' private tools.
PRIVATE = ("help", "whoami", "lang", "join")
GROUPS = ("help", "report", "how")
GROUP_ADMINS = ("help", "report", "how", "enroll", "backtranslate")
ADMINS = (
    "help",
    "whoami",
    "lang",
    "newop",
    "addunit",
    "code",
    "status",
    "flash",
    "acks",
    "where",
    "who",
    "log",
    "search",
)


@dataclass(frozen=True)
class Menu:
    """One setMyCommands call: a scope (Bot API JSON), a language (None: everyone else)."""

    scope: dict[str, Any]
    language: str | None
    commands: tuple[tuple[str, str], ...]


def menus(i18n: I18n, *, default_language: str, admin_ids: Sequence[int]) -> list[Menu]:
    """Every menu to set, in the order they are sent."""
    scopes: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"type": "all_private_chats"}, PRIVATE),
        ({"type": "all_group_chats"}, GROUPS),
        ({"type": "all_chat_administrators"}, GROUP_ADMINS),
        *(({"type": "chat", "chat_id": admin}, ADMINS) for admin in admin_ids),
    ]
    found: list[Menu] = []
    for scope, names in scopes:
        for language in (None, *SUPPORTED):
            lang = language or default_language
            commands = tuple((name, i18n.t(f"help.{name}", lang)[:256]) for name in names)
            found.append(Menu(scope, language, commands))
    return found


async def set_menus(
    bot: Any, i18n: I18n, *, default_language: str, admin_ids: Sequence[int]
) -> int:
    """Send every menu; one that Telegram refuses (an admin who never wrote to the bot) is
    skipped. Returns how many were set."""
    from telegram import (
        BotCommand,
        BotCommandScopeAllChatAdministrators,
        BotCommandScopeAllGroupChats,
        BotCommandScopeAllPrivateChats,
        BotCommandScopeChat,
    )
    from telegram.error import BadRequest

    kinds: dict[str, Any] = {
        "all_private_chats": BotCommandScopeAllPrivateChats,
        "all_group_chats": BotCommandScopeAllGroupChats,
        "all_chat_administrators": BotCommandScopeAllChatAdministrators,
    }
    # The menu an older Daraja set for every chat would otherwise show where nothing newer does.
    try:
        await bot.delete_my_commands()
    except Exception as exc:  # noqa: BLE001 - the menu is a convenience, never fatal
        log.debug("deleteMyCommands failed: %s", type(exc).__name__)
    done = 0
    # A scope Telegram refuses once (an admin's chat that does not exist yet) refuses its
    # other languages too: one log line and one request per scope, not five.
    refused: set[tuple[str, object]] = set()
    for menu in menus(i18n, default_language=default_language, admin_ids=admin_ids):
        kind = menu.scope["type"]
        key = (kind, menu.scope.get("chat_id"))
        if key in refused:
            continue
        scope = BotCommandScopeChat(menu.scope["chat_id"]) if kind == "chat" else kinds[kind]()
        try:
            await bot.set_my_commands(
                [BotCommand(name, text) for name, text in menu.commands],
                scope=scope,
                language_code=menu.language,
            )
            done += 1
        except Exception as exc:  # noqa: BLE001 - the menu is a convenience, never fatal
            if isinstance(exc, BadRequest):
                refused.add(key)  # refused for good (a timeout or a 429 is not)
            log.info("command menu for %s not set (%s)", kind, type(exc).__name__)
    return done
