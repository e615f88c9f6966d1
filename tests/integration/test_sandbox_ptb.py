"""python-telegram-bot 22 runs its polling Application against the sandbox without errors."""

from __future__ import annotations

import datetime as dtm
import html
import logging
from collections.abc import AsyncIterator

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.devtools.sandbox import FloodLimits, Sandbox, SandboxClient, SandboxUser

Context = ContextTypes.DEFAULT_TYPE


async def start(update: Update, context: Context) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack")]])
    await update.effective_message.reply_text("FLASH: hold position", reply_markup=keyboard)


async def echo(update: Update, context: Context) -> None:
    message = update.effective_message
    await message.reply_html(f"<b>echo</b> {html.escape(message.text)}")


async def edited(update: Update, context: Context) -> None:
    await context.bot.send_message(
        update.effective_chat.id, f"edited: {update.edited_message.text}"
    )


async def photo(update: Update, context: Context) -> None:
    file = await update.effective_message.photo[-1].get_file()
    data = await file.download_as_bytearray()
    await update.effective_message.reply_text(
        f"photo of {len(data)} bytes: {update.effective_message.caption}"
    )


async def acknowledge(update: Update, context: Context) -> None:
    query = update.callback_query
    await query.answer("Acknowledged")
    await query.edit_message_text(f"FLASH: hold position (ack by {query.from_user.first_name})")


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to PTB 22's future time periods (RetryAfter.retry_after as timedelta)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(flood=FloodLimits(enabled=False)) as sandbox:
        yield sandbox


@pytest.fixture
async def app(sb: Sandbox, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Application]:
    errors: list[object] = []

    async def on_error(update: object, context: Context) -> None:
        errors.append(context.error)

    application = (
        Application.builder()
        .token(sb.token)
        .base_url(f"{sb.url}/bot")
        .base_file_url(f"{sb.url}/file/bot")
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, edited))
    application.add_handler(MessageHandler(filters.PHOTO, photo))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(CallbackQueryHandler(acknowledge))
    application.add_error_handler(on_error)
    await application.initialize()
    await application.start()
    await application.updater.start_polling(timeout=dtm.timedelta(seconds=1), poll_interval=0)
    yield application
    await application.updater.stop()
    await application.stop()
    await application.shutdown()
    assert errors == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.fixture
def client(sb: Sandbox) -> SandboxClient:
    return sb.client


@pytest.fixture
async def alice(client: SandboxClient) -> SandboxUser:
    return await client.create_user("Alice", username="alice", language_code="fr")


async def test_a_message_gets_an_html_reply(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    group = await client.create_group("PNH", members=[alice], bot="member")
    said = await client.say(group, alice, "Rive <gauche> & droite")
    reply = await client.wait_for_message(group, from_bot=True)
    assert reply.html == "<b>echo</b> Rive &lt;gauche&gt; &amp; droite"
    assert reply.text == "echo Rive <gauche> & droite"
    assert reply.reply_to == said.message_id


async def test_a_button_press_is_answered_and_the_message_edited(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    await client.start(alice)
    flash = await client.wait_for_message(alice, from_bot=True)
    assert flash.button_labels == ["Ack"]
    query_id = await client.press(alice, alice, flash.message_id, text="Ack")
    assert (await client.wait_for_answer(query_id))["text"] == "Acknowledged"
    history = await client.wait_for(alice, lambda ms: ms[-1].edited)
    assert history[-1].text == "FLASH: hold position (ack by Alice)"
    assert history[-1].buttons == []


async def test_an_edit_arrives_as_edited_message(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    said = await client.say(alice, alice, "first")
    await client.wait_for_message(alice, from_bot=True)
    await client.edit(alice, alice, said.message_id, "second")
    reply = await client.wait_for_message(alice, contains="edited:")
    assert reply.text == "edited: second"


async def test_a_photo_is_downloaded_through_get_file(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    await client.send_photo(alice, alice, caption="checkpoint")
    reply = await client.wait_for_message(alice, from_bot=True)
    assert reply.text.startswith("photo of ")
    assert reply.text.endswith(" bytes: checkpoint")


async def test_errors_surface_as_python_telegram_bot_exceptions(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    bot = app.bot
    stranger = await client.create_user("Stranger")
    await client.start(alice)
    await client.wait_for_message(alice, from_bot=True)
    with pytest.raises(BadRequest) as bad:
        await bot.send_message(alice.id, "<foo>", parse_mode="HTML")
    assert (
        bad.value.message == 'Can\'t parse entities: unsupported start tag "foo" at byte offset 0'
    )
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(alice.id, "   ")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_message(stranger.id, "hi")
    await client.inject_fault("flood", method="sendMessage", retry_after=7)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(alice.id, "hi")
    assert flood.value.retry_after == dtm.timedelta(seconds=7)
    group = await client.create_group("G", members=[alice], bot="member")
    supergroup = await client.migrate(group)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(group.id, "hi")
    assert migrated.value.new_chat_id == supergroup.id


async def test_real_flood_limits_reach_the_bot_as_retry_after(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    await client.start(alice)
    await client.wait_for_message(alice, from_bot=True)
    await client.set_flood(enabled=True, private_burst=2)
    await app.bot.send_message(alice.id, "one")
    await app.bot.send_message(alice.id, "two")
    with pytest.raises(RetryAfter):
        await app.bot.send_message(alice.id, "three")


async def test_a_response_lost_after_acceptance_is_a_timeout_but_the_message_exists(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    await client.start(alice)
    await client.wait_for_message(alice, from_bot=True)
    await client.inject_fault("timeout_after_accept", method="sendMessage", delay=10)
    with pytest.raises(TimedOut):
        await app.bot.send_message(alice.id, "sent twice?", read_timeout=0.2)
    assert (await client.history(alice))[-1].text == "sent twice?"


async def test_every_kind_of_update_parses_in_python_telegram_bot(
    sb: Sandbox, client: SandboxClient, alice: SandboxUser
) -> None:
    bot = Application.builder().token(sb.token).base_url(f"{sb.url}/bot").build().bot
    async with bot:  # ask for every kind of update, chat_member included, before they happen
        assert await bot.get_updates(allowed_updates=Update.ALL_TYPES) == ()
    bob = await client.create_user("Bob")
    group = await client.create_group("PNH", members=[alice], bot="administrator")
    said = await client.say(group, alice, "text")
    await client.edit(group, alice, said.message_id, "text v2")
    await client.send_photo(group, alice, caption="photo")
    await client.send_document(group, alice, "sitrep.pdf", caption="doc")
    await client.send_video(group, alice)
    await client.send_voice(group, alice)
    await client.send_location(group, alice, 18.45, -72.28)
    await client.send_venue(group, alice, 18.45, -72.28, "Kenscoff", "Route de Kenscoff")
    await client.send_poll(group, alice, "Ready?", ["yes", "no"])
    await client.forward(group, alice, "relayed", from_user=bob)
    await client.forward(group, alice, "hidden", from_name="Someone")
    await client.join(group, bob, by=alice)
    await client.leave(group, bob)
    supergroup = await client.migrate(group)
    bot_message = await send_with_button(sb, supergroup.id)
    await client.press(supergroup, alice, bot_message, data="x")

    async with bot:
        updates = await bot.get_updates()
    messages = [u.effective_message for u in updates if u.effective_message]
    assert updates[0].my_chat_member.new_chat_member.status == "administrator"
    assert messages[0].new_chat_members[0].id == sb.state.bot.id
    assert updates[3].edited_message.text == "text v2"
    assert messages[4].document.file_name == "sitrep.pdf"
    assert messages[5].video.duration is not None
    assert messages[6].voice.duration is not None
    assert messages[7].location.latitude == 18.45
    assert messages[8].venue.title == "Kenscoff"
    assert messages[9].poll.options[1].text == "no"
    assert messages[10].forward_origin.sender_user.first_name == "Bob"
    assert messages[11].forward_origin.sender_user_name == "Someone"
    assert messages[12].new_chat_members[0].first_name == "Bob"
    assert messages[13].left_chat_member.first_name == "Bob"
    assert messages[14].migrate_to_chat_id == messages[15].chat.id
    assert messages[15].migrate_from_chat_id == group.id
    assert updates[-1].callback_query.data == "x"
    assert {u.chat_member is not None for u in updates} == {True, False}


async def send_with_button(sb: Sandbox, chat: int) -> int:
    """The bot (without an Application) posts a message with a button."""
    bot = Application.builder().token(sb.token).base_url(f"{sb.url}/bot").build().bot
    async with bot:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("X", callback_data="x")]])
        sent = await bot.send_message(chat, "choose", reply_markup=keyboard)
    return sent.message_id


async def test_uploads_from_python_telegram_bot_are_multipart(
    app: Application, client: SandboxClient, alice: SandboxUser
) -> None:
    await client.start(alice)
    await client.wait_for_message(alice, from_bot=True)
    sent = await app.bot.send_document(
        alice.id, document=b"SITREP 0600", filename="sitrep.txt", caption="<b>daily</b>",
        parse_mode="HTML",
    )  # fmt: skip
    assert sent.document.file_name == "sitrep.txt"
    assert sent.document.file_size == len(b"SITREP 0600")
    last = (await client.history(alice))[-1]
    assert (last.kind, last.html) == ("document", "<b>daily</b>")
