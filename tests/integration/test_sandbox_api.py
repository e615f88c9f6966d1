"""The sandbox's Bot API over HTTP, method by method, against the Bot API's documented rules."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from bot.devtools.sandbox import FloodLimits, Sandbox, SandboxChat, SandboxClient, SandboxUser

Call = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(flood=FloodLimits(enabled=False)) as sandbox:
        yield sandbox


@pytest.fixture
async def api(sb: Sandbox) -> AsyncIterator[Call]:
    """Call a Bot API method; form-encoded like python-telegram-bot unless as_json."""
    async with httpx.AsyncClient(base_url=f"{sb.url}/bot{sb.token}/", timeout=5) as http:

        async def call(
            method: str,
            *,
            as_json: bool = False,
            files: dict[str, Any] | None = None,
            **params: Any,
        ) -> tuple[int, dict[str, Any]]:
            if as_json:
                response = await http.post(method, json=params)
            else:
                form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
                response = await http.post(method, data=form, files=files)
            assert response.status_code == response.json().get("error_code", 200)
            return response.status_code, response.json()

        yield call


@pytest.fixture
def client(sb: Sandbox) -> SandboxClient:
    return sb.client


@pytest.fixture
async def alice(client: SandboxClient) -> SandboxUser:
    user = await client.create_user("Alice", username="alice", language_code="fr")
    await client.start(user)
    return user


@pytest.fixture
async def group(client: SandboxClient, alice: SandboxUser) -> SandboxChat:
    return await client.create_group("PNH Kenscoff", members=[alice], bot="member")


async def ok(call: Call, method: str, **params: Any) -> Any:
    status, body = await call(method, **params)
    assert (status, body["ok"]) == (200, True), body
    return body["result"]


async def error(call: Call, method: str, **params: Any) -> tuple[int, str]:
    status, body = await call(method, **params)
    assert body["ok"] is False
    assert set(body) <= {"ok", "error_code", "description", "parameters"}
    return status, body["description"]


# -- access -------------------------------------------------------------------------------


async def test_get_me_describes_the_bot(api: Call) -> None:
    me = await ok(api, "getMe")
    assert me["is_bot"] is True
    assert me["username"] == "daraja_sandbox_bot"
    for key in ("can_join_groups", "can_read_all_group_messages", "supports_inline_queries"):
        assert isinstance(me[key], bool)


async def test_method_names_are_case_insensitive_and_get_works(sb: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sb.url}/bot{sb.token}/GETME")
        assert response.json()["result"]["is_bot"] is True
        bad = await http.get(f"{sb.url}/bot123:wrong-token-but-well-formed/getMe")
        assert (bad.status_code, bad.json()) == (
            401,
            {"ok": False, "error_code": 401, "description": "Unauthorized"},
        )
        missing = await http.get(f"{sb.url}/bot{sb.token}/sendTelepathy")
        assert (missing.status_code, missing.json()["description"]) == (404, "Not Found")


# -- sendMessage --------------------------------------------------------------------------


async def test_send_message_returns_a_full_message(api: Call, group: SandboxChat) -> None:
    before = int(time.time())
    msg = await ok(
        api, "sendMessage", chat_id=group.id, text="<b>Ready</b> 🚓 <i>now</i>", parse_mode="HTML"
    )
    assert msg["from"]["is_bot"] is True
    assert msg["chat"] == {"id": group.id, "title": "PNH Kenscoff", "type": "group"}
    assert before <= msg["date"] <= int(time.time())  # seconds, not milliseconds
    assert msg["text"] == "Ready 🚓 now"
    assert msg["entities"] == [
        {"offset": 0, "length": 5, "type": "bold"},
        {"offset": 9, "length": 3, "type": "italic"},
    ]


async def test_message_ids_increase_per_chat(
    api: Call, group: SandboxChat, alice: SandboxUser
) -> None:
    ids = [
        (await ok(api, "sendMessage", chat_id=c, text="x"))["message_id"]
        for c in (group.id, group.id, alice.id)
    ]
    assert ids[1] == ids[0] + 1
    assert ids[2] == 2  # alice's private chat: her /start was 1


async def test_json_bodies_are_accepted(api: Call, alice: SandboxUser) -> None:
    msg = await ok(
        api,
        "sendMessage",
        as_json=True,
        chat_id=alice.id,
        text="hi",
        reply_markup={"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]},
    )
    assert msg["reply_markup"] == {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("", "Bad Request: message text is empty"),
        ("  \n ", "Bad Request: message text is empty"),
        ("<b></b>", "Bad Request: message text is empty"),
        ("x" * 4097, "Bad Request: message is too long"),
        ("😀" * 2049, "Bad Request: message is too long"),
        (
            "<foo>",
            'Bad Request: can\'t parse entities: Unsupported start tag "foo" at byte offset 0',
        ),
        (
            "<b>x",
            "Bad Request: can't parse entities: "
            'Can\'t find end tag corresponding to start tag "b"',
        ),
    ],
)
async def test_send_message_rejects_like_telegram(
    api: Call, alice: SandboxUser, text: str, description: str
) -> None:
    assert await error(api, "sendMessage", chat_id=alice.id, text=text, parse_mode="HTML") == (
        400,
        description,
    )


async def test_the_length_limit_counts_after_entity_parsing(api: Call, alice: SandboxUser) -> None:
    await ok(
        api, "sendMessage", chat_id=alice.id, text="<b>" + "x" * 4096 + "</b>", parse_mode="HTML"
    )
    await ok(api, "sendMessage", chat_id=alice.id, text="😀" * 2048)
    await ok(api, "sendMessage", chat_id=alice.id, text="&amp;" * 4096, parse_mode="HTML")


async def test_who_the_bot_may_message(
    api: Call, client: SandboxClient, alice: SandboxUser, group: SandboxChat
) -> None:
    stranger = await client.create_user("Stranger")
    assert await error(api, "sendMessage", chat_id=stranger.id, text="hi") == (
        403,
        "Forbidden: bot can't initiate conversation with a user",
    )
    await client.block_bot(alice)
    assert await error(api, "sendMessage", chat_id=alice.id, text="hi") == (
        403,
        "Forbidden: bot was blocked by the user",
    )
    other = await client.create_group("Other", members=[stranger])
    assert await error(api, "sendMessage", chat_id=other.id, text="hi") == (
        403,
        "Forbidden: bot is not a member of the group chat",
    )
    await client.remove_bot(group)
    assert await error(api, "sendMessage", chat_id=group.id, text="hi") == (
        403,
        "Forbidden: bot was kicked from the group chat",
    )
    assert await error(api, "sendMessage", chat_id=-999, text="hi") == (
        400,
        "Bad Request: chat not found",
    )


async def test_a_migrated_group_answers_with_the_new_id(
    api: Call, client: SandboxClient, group: SandboxChat
) -> None:
    supergroup = await client.migrate(group)
    status, body = await api("sendMessage", chat_id=group.id, text="hi")
    assert status == 400
    assert body["description"] == "Bad Request: group chat was upgraded to a supergroup chat"
    assert body["parameters"] == {"migrate_to_chat_id": supergroup.id}
    msg = await ok(api, "sendMessage", chat_id=supergroup.id, text="hi")
    assert msg["chat"]["type"] == "supergroup"


async def test_replies(
    api: Call, client: SandboxClient, alice: SandboxUser, group: SandboxChat
) -> None:
    said = await client.say(group, alice, "Where?")
    reply = await ok(
        api,
        "sendMessage",
        chat_id=group.id,
        text="Here",
        reply_parameters={"message_id": said.message_id},
    )
    assert reply["reply_to_message"]["text"] == "Where?"
    assert reply["reply_to_message"]["from"]["id"] == alice.id
    assert "reply_to_message" not in reply["reply_to_message"]
    legacy = await ok(
        api, "sendMessage", chat_id=group.id, text="x", reply_to_message_id=said.message_id
    )
    assert legacy["reply_to_message"]["message_id"] == said.message_id
    assert await error(
        api, "sendMessage", chat_id=group.id, text="x", reply_parameters={"message_id": 999}
    ) == (400, "Bad Request: message to be replied not found")
    loose = await ok(
        api,
        "sendMessage",
        chat_id=group.id,
        text="x",
        reply_parameters={"message_id": 999, "allow_sending_without_reply": True},
    )
    assert "reply_to_message" not in loose
    assert (await client.history(group))[-1].text == "x"


async def test_inline_keyboards_are_validated(api: Call, alice: SandboxUser) -> None:
    def markup(button: dict[str, Any]) -> dict[str, Any]:
        return {"inline_keyboard": [[button]]}

    assert (
        await error(
            api,
            "sendMessage",
            chat_id=alice.id,
            text="x",
            reply_markup=markup({"text": "a", "callback_data": "x" * 65}),
        )
    )[1] == "Bad Request: BUTTON_DATA_INVALID"
    assert (
        "Text buttons are unallowed"
        in (
            await error(
                api, "sendMessage", chat_id=alice.id, text="x", reply_markup=markup({"text": "a"})
            )
        )[1]
    )
    msg = await ok(
        api,
        "sendMessage",
        chat_id=alice.id,
        text="x",
        reply_markup=markup({"text": "a", "url": "https://example.org"}),
    )
    assert msg["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://example.org/"


async def test_link_preview_options_are_accepted(api: Call, alice: SandboxUser) -> None:
    await ok(
        api,
        "sendMessage",
        chat_id=alice.id,
        text="https://example.org",
        link_preview_options={"is_disabled": True},
    )
    await ok(
        api,
        "sendMessage",
        chat_id=alice.id,
        text="https://example.org",
        disable_web_page_preview=True,
    )


# -- edits, deletes, copies ----------------------------------------------------------------


async def test_edit_message_text_rules(
    api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}
    sent = await ok(
        api,
        "sendMessage",
        chat_id=alice.id,
        text="<b>v1</b>",
        parse_mode="HTML",
        reply_markup=keyboard,
    )
    mid = sent["message_id"]
    not_modified = (
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message"
    )
    assert await error(
        api,
        "editMessageText",
        chat_id=alice.id,
        message_id=mid,
        text="<b>v1</b>",
        parse_mode="HTML",
        reply_markup=keyboard,
    ) == (400, not_modified)
    edited = await ok(api, "editMessageText", chat_id=alice.id, message_id=mid, text="v2")
    assert edited["text"] == "v2"
    assert edited["edit_date"] >= sent["date"]
    assert "reply_markup" not in edited  # an edit without reply_markup drops the keyboard
    assert await error(api, "editMessageText", chat_id=alice.id, message_id=999, text="x") == (
        400,
        "Bad Request: message to edit not found",
    )
    start = (await client.history(alice))[0]
    assert await error(
        api, "editMessageText", chat_id=alice.id, message_id=start.message_id, text="x"
    ) == (400, "Bad Request: message can't be edited")
    history = await client.history(alice)
    assert history[-1].edited
    assert history[-1].edits == ["v1"]


async def test_edit_message_reply_markup(api: Call, alice: SandboxUser) -> None:
    sent = await ok(api, "sendMessage", chat_id=alice.id, text="x")
    keyboard = {"inline_keyboard": [[{"text": "Ack", "callback_data": "ack"}]]}
    edited = await ok(
        api,
        "editMessageReplyMarkup",
        chat_id=alice.id,
        message_id=sent["message_id"],
        reply_markup=keyboard,
    )
    assert edited["reply_markup"] == keyboard
    status, description = await error(
        api,
        "editMessageReplyMarkup",
        chat_id=alice.id,
        message_id=sent["message_id"],
        reply_markup=keyboard,
    )
    assert (status, description.split(":")[1]) == (400, " message is not modified")


async def test_delete_message(
    api: Call, client: SandboxClient, alice: SandboxUser, group: SandboxChat
) -> None:
    sent = await ok(api, "sendMessage", chat_id=group.id, text="oops")
    assert await ok(api, "deleteMessage", chat_id=group.id, message_id=sent["message_id"]) is True
    assert all(m.text != "oops" for m in await client.history(group))
    assert await error(api, "deleteMessage", chat_id=group.id, message_id=sent["message_id"]) == (
        400,
        "Bad Request: message to delete not found",
    )
    theirs = await client.say(group, alice, "mine")
    assert await error(api, "deleteMessage", chat_id=group.id, message_id=theirs.message_id) == (
        400,
        "Bad Request: message can't be deleted",
    )


async def test_a_message_older_than_48_hours_cannot_be_deleted_but_can_be_edited(
    api: Call, client: SandboxClient, group: SandboxChat
) -> None:
    old = await ok(api, "sendMessage", chat_id=group.id, text="part 2")
    await client.age_messages(group, 48 * 3600)
    assert await error(api, "deleteMessage", chat_id=group.id, message_id=old["message_id"]) == (
        400,
        "Bad Request: message can't be deleted",
    )
    await ok(api, "editMessageText", chat_id=group.id, message_id=old["message_id"], text="x")
    newer = await ok(api, "sendMessage", chat_id=group.id, text="part 3")
    assert await ok(api, "deleteMessage", chat_id=group.id, message_id=newer["message_id"])
    assert [m.text for m in await client.history(group) if m.from_bot] == ["x"]


async def test_copy_message_returns_only_the_id(
    api: Call, client: SandboxClient, alice: SandboxUser, group: SandboxChat
) -> None:
    said = await client.say(group, alice, html="<b>Roadblock</b> at km 12")
    copied = await ok(
        api, "copyMessage", chat_id=alice.id, from_chat_id=group.id, message_id=said.message_id
    )
    assert list(copied) == ["message_id"]
    last = (await client.history(alice))[-1]
    assert (last.message_id, last.html, last.from_bot) == (
        copied["message_id"],
        "<b>Roadblock</b> at km 12",
        True,
    )
    assert await error(
        api, "copyMessage", chat_id=alice.id, from_chat_id=group.id, message_id=999
    ) == (400, "Bad Request: message to copy not found")


# -- media and places ----------------------------------------------------------------------


async def test_upload_then_reuse_a_photo_and_download_it(
    sb: Sandbox, api: Call, alice: SandboxUser
) -> None:
    sent = await ok(
        api,
        "sendPhoto",
        chat_id=alice.id,
        caption="<i>checkpoint</i>",
        parse_mode="HTML",
        files={"photo": ("p.jpg", b"\xff\xd8jpegbytes", "image/jpeg")},
    )
    sizes = sent["photo"]
    assert {"file_id", "file_unique_id", "width", "height"} <= set(sizes[-1])
    assert sent["caption_entities"] == [{"offset": 0, "length": 10, "type": "italic"}]
    again = await ok(api, "sendPhoto", chat_id=alice.id, photo=sizes[-1]["file_id"])
    assert again["photo"][-1]["file_id"] == sizes[-1]["file_id"]
    info = await ok(api, "getFile", file_id=sizes[-1]["file_id"])
    async with httpx.AsyncClient() as http:
        data = await http.get(f"{sb.url}/file/bot{sb.token}/{info['file_path']}")
    assert data.content == b"\xff\xd8jpegbytes"
    assert await error(api, "sendPhoto", chat_id=alice.id, photo="no-such-file") == (
        400,
        "Bad Request: wrong file identifier/HTTP URL specified",
    )


async def test_document_video_voice_and_caption_limit(api: Call, alice: SandboxUser) -> None:
    doc = await ok(
        api,
        "sendDocument",
        chat_id=alice.id,
        files={"document": ("sitrep.txt", b"SITREP", "text/plain")},
    )
    assert doc["document"]["file_name"] == "sitrep.txt"
    video = await ok(
        api, "sendVideo", chat_id=alice.id, files={"video": ("v.mp4", b"v", "video/mp4")}
    )
    assert {"width", "height", "duration"} <= set(video["video"])
    voice = await ok(
        api, "sendVoice", chat_id=alice.id, files={"voice": ("v.ogg", b"v", "audio/ogg")}
    )
    assert "duration" in voice["voice"]
    await ok(
        api,
        "sendDocument",
        chat_id=alice.id,
        document=doc["document"]["file_id"],
        caption="x" * 1024,
    )
    assert await error(
        api,
        "sendDocument",
        chat_id=alice.id,
        document=doc["document"]["file_id"],
        caption="x" * 1025,
    ) == (400, "Bad Request: message caption is too long")
    assert (await error(api, "sendPhoto", chat_id=alice.id, photo=doc["document"]["file_id"]))[
        1
    ] == ("Bad Request: can't use file of type Document as Photo")


async def test_location_and_venue(api: Call, alice: SandboxUser) -> None:
    loc = await ok(api, "sendLocation", chat_id=alice.id, latitude=18.4527, longitude=-72.2785)
    assert loc["location"] == {"latitude": 18.4527, "longitude": -72.2785}
    venue = await ok(
        api,
        "sendVenue",
        chat_id=alice.id,
        latitude=18.45,
        longitude=-72.28,
        title="Kenscoff",
        address="Route de Kenscoff",
    )
    assert venue["venue"]["title"] == "Kenscoff"
    assert venue["location"]["latitude"] == 18.45
    assert (await error(api, "sendLocation", chat_id=alice.id, latitude=91, longitude=0))[0] == 400


# -- updates ---------------------------------------------------------------------------------


async def test_injected_raw_updates_are_sent_byte_for_byte_and_confirmed_by_offset(
    sb: Sandbox, client: SandboxClient, alice: SandboxUser
) -> None:
    lone = '{"update_id": __UPDATE_ID__, "message": {"text": "a\\ud800b"}}'
    deep = '{"update_id": 99999, "m": ' + "[" * 5000 + "]" * 5000 + "}"
    ids = await client.inject_updates([lone, deep])
    assert ids[1] == 99999
    await client.say(alice, alice, "after")
    async with httpx.AsyncClient(timeout=5) as http:
        body = (await http.get(f"{sb.url}/bot{sb.token}/getUpdates")).text
        assert lone.replace("__UPDATE_ID__", str(ids[0])) in body
        assert deep in body
        # Ids keep rising after an injected one, so an offset confirms what came before.
        again = await http.get(f"{sb.url}/bot{sb.token}/getUpdates", params={"offset": 100000})
        assert [u["message"]["text"] for u in again.json()["result"]] == ["after"]


async def test_get_updates_offsets_confirm_and_unconfirmed_updates_come_back(
    api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    await client.say(alice, alice, "two")
    await client.say(alice, alice, "three")
    first = await ok(api, "getUpdates")
    assert [u["message"]["text"] for u in first] == ["/start", "two", "three"]
    assert await ok(api, "getUpdates") == first  # not confirmed: delivered again
    limited = await ok(api, "getUpdates", limit=1, offset=first[0]["update_id"] + 1)
    assert [u["message"]["text"] for u in limited] == ["two"]
    last = await ok(api, "getUpdates", offset=-1)
    assert [u["message"]["text"] for u in last] == ["three"]
    assert await ok(api, "getUpdates", offset=last[0]["update_id"] + 1) == []


async def test_updates_carry_the_api_shapes(
    api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    update = (await ok(api, "getUpdates"))[0]
    message = update["message"]
    assert message["from"] == {
        "id": alice.id,
        "is_bot": False,
        "first_name": "Alice",
        "username": "alice",
        "language_code": "fr",
    }
    assert message["chat"] == {
        "id": alice.id,
        "first_name": "Alice",
        "username": "alice",
        "type": "private",
    }
    assert message["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    assert isinstance(message["date"], int)


async def test_allowed_updates_filter_new_updates(
    api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    await ok(api, "getUpdates", offset=-1, allowed_updates=["callback_query"])
    await client.say(alice, alice, "ignored")
    assert [
        u
        for u in await ok(api, "getUpdates", offset=-1)
        if "message" in u and u["message"]["text"] == "ignored"
    ] == []


async def test_long_poll_returns_as_soon_as_something_happens(
    api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    confirmed = await ok(api, "getUpdates")
    offset = confirmed[-1]["update_id"] + 1
    poll = asyncio.create_task(api("getUpdates", offset=offset, timeout=10))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await client.say(alice, alice, "wake up")
    _, body = await asyncio.wait_for(poll, 2)
    assert [u["message"]["text"] for u in body["result"]] == ["wake up"]


async def test_a_second_poller_terminates_the_first_with_409(api: Call) -> None:
    first = asyncio.create_task(api("getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(api("getUpdates", timeout=0.2))
    status, body = await asyncio.wait_for(first, 2)
    assert (status, body["description"]) == (
        409,
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running",
    )
    assert (await second)[0] == 200


async def test_webhook_blocks_get_updates(api: Call, alice: SandboxUser) -> None:
    assert await ok(api, "setWebhook", url="https://bot.example.org/hook") is True
    info = await ok(api, "getWebhookInfo")
    assert (info["url"], info["pending_update_count"]) == ("https://bot.example.org/hook", 1)
    assert (await error(api, "getUpdates"))[0] == 409
    await ok(api, "deleteWebhook", drop_pending_updates=True)
    assert await ok(api, "getUpdates") == []


async def test_stopping_the_sandbox_ends_long_polls_at_once() -> None:
    sandbox = await Sandbox().start()
    async with httpx.AsyncClient(timeout=30) as http:
        poll = asyncio.create_task(
            http.post(f"{sandbox.url}/bot{sandbox.token}/getUpdates", data={"timeout": "30"})
        )
        await asyncio.sleep(0.05)
        await asyncio.wait_for(sandbox.stop(), 2)
        response = await asyncio.wait_for(poll, 2)
    assert response.json() == {"ok": True, "result": []}


# -- callback queries, commands, chats ---------------------------------------------------------


async def test_callback_query_and_its_answer(
    api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Ack", "callback_data": "ack:1"}]]}
    sent = await ok(api, "sendMessage", chat_id=alice.id, text="FLASH", reply_markup=keyboard)
    await ok(api, "getUpdates", offset=-1)
    query_id = await client.press(alice, alice, sent["message_id"], text="Ack")
    update = (await ok(api, "getUpdates", offset=-1))[0]["callback_query"]
    assert (update["id"], update["data"], update["from"]["id"]) == (query_id, "ack:1", alice.id)
    assert update["message"]["message_id"] == sent["message_id"]
    assert "chat_instance" in update
    assert await ok(api, "answerCallbackQuery", callback_query_id=query_id, text="Noted") is True
    assert (await client.callback_answer(query_id))["text"] == "Noted"
    assert await error(api, "answerCallbackQuery", callback_query_id=query_id) == (
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )


async def test_my_commands_per_scope_and_language(api: Call) -> None:
    commands = [{"command": "help", "description": "Aide"}]
    scope = {"type": "all_group_chats"}
    assert (
        await ok(api, "setMyCommands", commands=commands, scope=scope, language_code="fr") is True
    )
    assert await ok(api, "getMyCommands", scope=scope, language_code="fr") == commands
    assert await ok(api, "getMyCommands") == []
    assert (
        await error(
            api, "setMyCommands", commands=[{"command": "Bad Command", "description": "x"}]
        )
    )[1] == "Bad Request: BOT_COMMAND_INVALID"
    await ok(api, "deleteMyCommands", scope=scope, language_code="fr")
    assert await ok(api, "getMyCommands", scope=scope, language_code="fr") == []


async def test_chat_information(
    sb: Sandbox, api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    bob = await client.create_user("Bob")
    group = await client.create_group(
        "MSS", members=[alice, bob], admins=[alice], bot="administrator"
    )
    chat = await ok(api, "getChat", chat_id=group.id)
    assert (chat["type"], chat["title"]) == ("group", "MSS")
    assert {"accent_color_id", "max_reaction_count", "accepted_gift_types"} <= set(chat)
    assert (await ok(api, "getChatMember", chat_id=group.id, user_id=alice.id))[
        "status"
    ] == "creator"
    assert (await ok(api, "getChatMember", chat_id=group.id, user_id=bob.id))["status"] == "member"
    me = await ok(api, "getChatMember", chat_id=group.id, user_id=sb.state.bot.id)
    assert me["status"] == "administrator"
    assert me["can_delete_messages"] is True
    admins = await ok(api, "getChatAdministrators", chat_id=group.id)
    assert sorted(a["status"] for a in admins) == ["administrator", "creator"]
    assert await ok(api, "getChatMemberCount", chat_id=group.id) == 3
    assert (await error(api, "getChatAdministrators", chat_id=alice.id))[
        1
    ] == "Bad Request: there are no administrators in the private chat"


async def test_leave_chat_and_chat_actions(
    api: Call, client: SandboxClient, alice: SandboxUser, group: SandboxChat
) -> None:
    assert await ok(api, "sendChatAction", chat_id=group.id, action="typing") is True
    assert await error(api, "sendChatAction", chat_id=group.id, action="dancing") == (
        400,
        "Bad Request: wrong parameter action in request",
    )
    assert (await client.chat_actions(group))[0]["action"] == "typing"
    await ok(api, "getUpdates", offset=-1)
    assert await ok(api, "leaveChat", chat_id=group.id) is True
    assert "my_chat_member" in (await ok(api, "getUpdates", offset=-1))[0]
    assert (await client.history(group))[-1].service["left_chat_member"]["is_bot"] is True
    assert (await error(api, "sendMessage", chat_id=group.id, text="x"))[0] == 403


# -- flood control and faults -----------------------------------------------------------------


async def test_flood_control_answers_429_with_retry_after(
    api: Call, client: SandboxClient, alice: SandboxUser, group: SandboxChat
) -> None:
    await client.set_flood(enabled=True, private_burst=2, group_burst=3)
    for _ in range(2):
        await ok(api, "sendMessage", chat_id=alice.id, text="x")
    status, body = await api("sendMessage", chat_id=alice.id, text="x")
    assert status == 429
    assert (
        body["description"]
        == f"Too Many Requests: retry after {body['parameters']['retry_after']}"
    )
    assert body["parameters"]["retry_after"] >= 1
    for _ in range(3):
        await ok(api, "sendMessage", chat_id=group.id, text="x")
    assert (await api("sendMessage", chat_id=group.id, text="x"))[0] == 429
    records = await client.requests("sendMessage", alice)
    assert [r.status for r in records] == [200, 200, 429]
    assert await client.peak_sends(alice, 1.0) == 2


async def test_injected_faults(
    sb: Sandbox, api: Call, client: SandboxClient, alice: SandboxUser
) -> None:
    await client.inject_fault("flood", method="sendMessage", retry_after=7)
    status, body = await api("sendMessage", chat_id=alice.id, text="x")
    assert (status, body["parameters"]) == (429, {"retry_after": 7})
    await client.inject_fault("server_error", status=502, chat=alice)
    assert await error(api, "sendMessage", chat_id=alice.id, text="x") == (502, "Bad Gateway")
    await client.inject_fault("drop", method="sendMessage")
    with pytest.raises(httpx.RemoteProtocolError):
        await api("sendMessage", chat_id=alice.id, text="never stored")
    await client.inject_fault("timeout_after_accept", method="sendMessage", delay=30)
    async with httpx.AsyncClient(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                f"{sb.url}/bot{sb.token}/sendMessage",
                data={"chat_id": str(alice.id), "text": "stored anyway"},
            )
    texts = [m.text for m in await client.history(alice)]
    assert "stored anyway" in texts
    assert "never stored" not in texts
    outcomes = [r.outcome for r in await client.requests("sendMessage")]
    assert outcomes == [
        "fault:flood",
        "fault:server_error",
        "fault:drop",
        "fault:timeout_after_accept",
    ]


async def test_batch_posts_many_messages_in_order_in_one_request(
    api: Call, client: SandboxClient, alice: SandboxUser, group: SandboxChat
) -> None:
    said = await client.say_many([(group, alice, f"line {i}") for i in range(5)])
    assert [m.text for m in said] == [f"line {i}" for i in range(5)]
    ids = [m.message_id for m in said]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    updates = await ok(api, "getUpdates", timeout=0)
    texts = [u["message"].get("text") for u in updates if "message" in u]
    assert texts[-5:] == [f"line {i}" for i in range(5)]
    with pytest.raises(Exception, match="not itself a batch"):
        await client._call("batch", calls=[{"op": "batch", "args": {"calls": []}}])
