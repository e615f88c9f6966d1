"""What people do and see in the sandbox, through the in-process control client (no HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from bot.devtools.sandbox import Sandbox, SandboxClient, SandboxError, SandboxTimeout


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
def client(sandbox: Sandbox) -> SandboxClient:
    return sandbox.client


def pending(sandbox: Sandbox) -> list[str]:
    """Kinds of the updates waiting for the bot."""
    return [next(k for k in u if k != "update_id") for u in sandbox.state.updates]


async def test_people_post_only_where_they_are_members(client: SandboxClient) -> None:
    alice = await client.create_user("Alice", language_code="ht")
    bob = await client.create_user("Bob")
    group = await client.create_group("PNH", members=[alice])
    await client.say(group, alice, "Bonjou")
    with pytest.raises(SandboxError, match="not a member"):
        await client.say(group, bob, "hi")
    with pytest.raises(SandboxError, match="private chat of another user"):
        await client.say(alice.id, bob, "hi")


async def test_the_bot_sees_group_messages_only_once_it_is_added(
    sandbox: Sandbox, client: SandboxClient
) -> None:
    alice = await client.create_user("Alice")
    group = await client.create_group("MSS", members=[alice])
    await client.say(group, alice, "before the bot")
    assert pending(sandbox) == []
    await client.add_bot(group, admin=True)
    assert pending(sandbox) == ["my_chat_member", "message"]
    update = sandbox.state.updates[-1]["message"]
    assert update["new_chat_members"][0]["is_bot"] is True
    await client.say(group, alice, "after")
    assert pending(sandbox)[-1] == "message"


async def test_privacy_mode_shows_the_bot_commands_and_replies_only() -> None:
    sandbox = Sandbox(privacy_mode=True)
    client = sandbox.client
    alice = await client.create_user("Alice")
    group = await client.create_group("G", members=[alice], bot="member")
    before = len(sandbox.state.updates)
    await client.say(group, alice, "chatter")
    await client.command(group, alice, "help")
    await client.say(group, alice, "/help@other_bot")
    texts = [u["message"]["text"] for u in sandbox.state.updates[before:]]
    assert texts == ["/help"]


async def test_history_shows_every_sender_with_formatting_replies_and_edits(
    client: SandboxClient,
) -> None:
    alice = await client.create_user("Alice", username="alice")
    group = await client.create_group("G", members=[alice], bot="member")
    first = await client.say(group, alice, html="Go to <b>Kenscoff</b> 😀")
    await client.say(group, alice, "ok", reply_to=first.message_id)
    await client.edit(group, alice, first.message_id, html="Go to <b>Furcy</b>")
    await client.send_location(group, alice, 18.45, -72.28)
    await client.send_photo(group, alice, caption="checkpoint")
    history = await client.history(group)
    assert [m.kind for m in history] == ["service", "text", "text", "location", "photo"]
    edited = history[1]
    assert edited.html == "Go to <b>Furcy</b>"
    assert edited.edited
    assert edited.edits == ["Go to Kenscoff 😀"]
    assert history[2].reply_to == first.message_id
    assert history[3].summary() == "[location 18.45, -72.28]"
    assert history[4].summary() == "[photo] checkpoint"
    assert history[0].summary() == "[new chat members: Daraja]"


async def test_an_edit_reaches_the_bot_as_edited_message(
    sandbox: Sandbox, client: SandboxClient
) -> None:
    alice = await client.create_user("Alice")
    msg = await client.start(alice)
    await client.edit(alice, alice, msg.message_id, "/start again")
    assert pending(sandbox) == ["message", "edited_message"]
    assert sandbox.state.updates[-1]["edited_message"]["edit_date"] >= msg.date
    with pytest.raises(SandboxError, match="must change"):
        await client.edit(alice, alice, msg.message_id, "/start again")


async def test_migration_moves_the_group_to_a_new_supergroup(
    sandbox: Sandbox, client: SandboxClient
) -> None:
    alice = await client.create_user("Alice")
    group = await client.create_group("G", members=[alice], bot="member")
    supergroup = await client.migrate(group)
    assert supergroup.type == "supergroup"
    assert str(supergroup.id).startswith("-100")
    assert (await client.chat(group)).migrated_to == supergroup.id
    services = [u["message"] for u in sandbox.state.updates if "message" in u][-2:]
    assert services[0]["migrate_to_chat_id"] == supergroup.id
    assert services[1]["migrate_from_chat_id"] == group.id
    assert services[1]["chat"]["type"] == "supergroup"
    with pytest.raises(SandboxError, match="upgraded"):
        await client.say(group, alice, "old group")
    await client.say(supergroup, alice, "new group")


async def test_join_and_leave_are_service_messages(client: SandboxClient) -> None:
    alice = await client.create_user("Alice")
    bob = await client.create_user("Bob")
    group = await client.create_group("G", members=[alice], bot="member")
    joined = await client.join(group, bob, by=alice)
    left = await client.leave(group, bob)
    assert joined.service["new_chat_members"][0]["id"] == bob.id
    assert left.service["left_chat_member"]["id"] == bob.id
    assert (await client.chat(group)).members[bob.id] == "left"


async def test_wait_for_wakes_on_the_change_not_on_a_timer(client: SandboxClient) -> None:
    alice = await client.create_user("Alice")
    await client.start(alice)

    async def later() -> None:
        await asyncio.sleep(0)
        await client.say(alice, alice, "second")

    task = asyncio.create_task(later())
    message = await client.wait_for_message(alice, contains="second", timeout=2)
    await task
    assert message.text == "second"


async def test_wait_for_reports_the_last_messages_when_it_times_out(client: SandboxClient) -> None:
    alice = await client.create_user("Alice")
    await client.start(alice)
    with pytest.raises(SandboxTimeout, match="Alice: /start"):
        await client.wait_for_message(alice, from_bot=True, timeout=0.05)


async def test_press_needs_a_callback_button(client: SandboxClient, sandbox: Sandbox) -> None:
    alice = await client.create_user("Alice")
    msg = await client.start(alice)
    with pytest.raises(SandboxError, match="no inline keyboard"):
        await client.press(alice, alice, msg.message_id, data="x")


async def test_reset_empties_the_world(client: SandboxClient, sandbox: Sandbox) -> None:
    alice = await client.create_user("Alice")
    await client.start(alice)
    await client.reset()
    assert await client.chats() == []
    assert sandbox.state.updates == []
