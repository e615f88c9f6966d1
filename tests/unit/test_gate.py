"""The gate drops what bots send, including an update that claims to be a person but carries
the bot's own id (so the bot never answers or relays itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from telegram import Chat, Message, Update, User
from telegram.ext import ApplicationHandlerStop

from bot.context import DarajaContext
from handlers.gate import gate

BOT_ID = 7000000001


class _Bot:
    id = BOT_ID


class _Context:
    """Only the bot's identity: touching the services means the gate let the update in."""

    bot = _Bot()

    @property
    def services(self) -> Any:
        raise AssertionError("the gate went past the bot check")


def _update(sender: User) -> Update:
    chat = Chat(id=-100123, type="supergroup", title="KE-3")
    message = Message(
        message_id=5,
        date=datetime(2026, 11, 26, tzinfo=UTC),
        chat=chat,
        from_user=sender,
        text="Roger",
    )
    return Update(update_id=1, message=message)


@pytest.mark.parametrize(
    "sender",
    [
        User(id=BOT_ID, first_name="Daraja", is_bot=False),  # our id, claiming to be a person
        User(id=BOT_ID, first_name="Daraja", is_bot=True),
        User(id=555, first_name="OtherBot", is_bot=True),
    ],
    ids=["own-id-claiming-person", "own-id", "other-bot"],
)
async def test_the_gate_stops_bots_and_the_bots_own_id(sender: User) -> None:
    with pytest.raises(ApplicationHandlerStop):
        await gate(_update(sender), cast(DarajaContext, _Context()))


async def test_a_person_goes_past_the_bot_check() -> None:
    person = User(id=4242, first_name="Otieno", is_bot=False)
    with pytest.raises(AssertionError, match="went past the bot check"):
        await gate(_update(person), cast(DarajaContext, _Context()))
