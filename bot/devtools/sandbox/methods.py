"""The Bot API methods the sandbox implements, each checked the way Telegram checks it.

A method takes the `State` and the request's `Params` and returns the `result` value, or raises
`ApiError` with Telegram's exact description. Method names are looked up case-insensitively.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.devtools.sandbox.html import HtmlError, _check_url, normalize, parse_html, utf16_len
from bot.devtools.sandbox.state import JSON, ApiError, Chat, Message, State, bad_request

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
GET_FILE_LIMIT = 20 * 1024 * 1024  # getFile refuses larger files (cloud Bot API)
CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note",
        "upload_video_note",
    }
)  # fmt: skip
_BUTTON_ACTIONS = (
    "callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "login_url", "web_app", "callback_game", "pay",
)  # fmt: skip


@dataclass(frozen=True)
class Upload:
    """A file sent in a multipart request."""

    filename: str | None
    data: bytes
    content_type: str | None


class Params:
    """A request's parameters, coerced the way the Bot API coerces form values."""

    def __init__(self, values: dict[str, Any], files: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.files = files or {}

    def raw(self, name: str) -> Any:
        """The value, with empty strings treated as absent."""
        value = self.values.get(name)
        return None if value == "" else value

    def text(self, name: str) -> str | None:
        """A string parameter."""
        value = self.raw(name)
        return None if value is None else str(value)

    def integer(
        self, name: str, *, missing: str | None = None, invalid: str | None = None
    ) -> int | None:
        """An integer parameter; `missing`/`invalid` are the Bad Request texts."""
        value = self.raw(name)
        if value is None:
            if missing:
                raise bad_request(missing)
            return None
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise bad_request(invalid or f"{name} is invalid")

    def number(self, name: str, *, missing: str | None = None) -> float | None:
        """A float parameter."""
        value = self.raw(name)
        if value is None:
            if missing:
                raise bad_request(missing)
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"wrong {name} specified") from None

    def boolean(self, name: str) -> bool:
        """A boolean parameter (form values "true"/"1")."""
        value = self.raw(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def json(self, name: str, error: str) -> Any:
        """A parameter that holds a JSON value (a string in form bodies)."""
        value = self.raw(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(error) from None
        return value


Method = Callable[[State, Params], Awaitable[Any]]
METHODS: dict[str, Method] = {}


def method(func: Method) -> Method:
    """Register a Bot API method under its camelCase name (the function's name)."""
    parts = func.__name__.strip("_").split("_")
    METHODS[parts[0] + "".join(p.title() for p in parts[1:])] = func
    return func


def canonical(name: str) -> str | None:
    """The canonical name of a method, matched case-insensitively."""
    return next((m for m in METHODS if m.lower() == name.lower()), None)


# -- shared checks --------------------------------------------------------------------------


def parse_chat_id(params: Params, name: str = "chat_id") -> int | None:
    """The numeric chat id if the parameter is one (used for logs, limits and faults)."""
    value = params.raw(name)
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def resolve_chat(state: State, params: Params, name: str = "chat_id") -> Chat:
    """The chat a request names, by id or @username."""
    value = params.raw(name)
    if value is None:
        raise bad_request(f"{name} is empty")
    if isinstance(value, str) and value.startswith("@"):
        for named in state.chats.values():
            if named.username and named.username.lower() == value[1:].lower():
                return named
        raise bad_request("chat not found")
    chat_id = parse_chat_id(params, name)
    chat = state.chats.get(chat_id) if chat_id is not None else None
    if chat is None:
        if chat_id in state.users and chat_id != state.bot.id:
            # A person who never wrote to the bot: Telegram knows them but refuses.
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        raise bad_request("chat not found")
    return chat


def check_member(state: State, chat: Chat) -> None:
    """Raise Telegram's error if the bot may not act in this chat."""
    if chat.migrated_to is not None:
        raise bad_request(
            "group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": chat.migrated_to},
        )
    if chat.type == "private":
        user = state.users[chat.id]
        if user.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if not user.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return
    kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
    if chat.bot_status == "kicked":
        raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
    if not chat.bot_present():
        raise ApiError(403, f"Forbidden: bot is not a member of the {kind}")


def formatted(
    state: State,
    params: Params,
    text_key: str,
    *,
    limit: int,
    empty: str | None,
    too_long: str,
) -> tuple[str | None, list[JSON]]:
    """Text (or caption) and its entities from text + parse_mode or explicit entities."""
    raw = params.text(text_key)
    if raw is None:
        if empty:
            raise bad_request(empty)
        return None, []
    mode = params.text("parse_mode")
    entities_key = "entities" if text_key == "text" else "caption_entities"
    explicit = params.json(entities_key, "can't parse entities JSON object")
    entities: list[JSON] = []
    if mode:
        if mode.lower() != "html":
            raise bad_request(f"unsupported parse_mode {mode!r} (the sandbox implements HTML)")
        try:
            raw, entities = parse_html(raw, {u.id: u.to_api() for u in state.users.values()})
        except HtmlError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    elif explicit:
        if not isinstance(explicit, list) or not all(_valid_entity(e, raw) for e in explicit):
            raise bad_request("can't parse entities JSON object")
        entities = [dict(e) for e in explicit]
    text, entities = normalize(raw, entities)
    if not text:
        if empty:
            raise bad_request(empty)
        return None, []
    if utf16_len(text) > limit:
        raise bad_request(too_long)
    return text, entities


def _valid_entity(entity: Any, text: str) -> bool:
    return (
        isinstance(entity, dict)
        and isinstance(entity.get("type"), str)
        and isinstance(entity.get("offset"), int)
        and isinstance(entity.get("length"), int)
        and entity["offset"] >= 0
        and entity["length"] > 0
        and entity["offset"] + entity["length"] <= utf16_len(text)
    )


def reply_target(state: State, chat: Chat, params: Params) -> int | None:
    """The message a new message replies to (reply_parameters or reply_to_message_id)."""
    allow = params.boolean("allow_sending_without_reply")
    reply = params.json("reply_parameters", "can't parse reply parameters JSON object")
    if reply is not None:
        if not isinstance(reply, dict) or "message_id" not in reply:
            raise bad_request("can't parse reply parameters JSON object")
        target = reply["message_id"]
        allow = bool(reply.get("allow_sending_without_reply", allow))
        if reply.get("chat_id") not in (None, chat.id):
            raise bad_request("message to be replied not found")
    else:
        target = params.integer("reply_to_message_id")
    if target is None:
        return None
    if state.find_message(chat, int(target)) is None:
        if allow:
            return None
        raise bad_request("message to be replied not found")
    return int(target)


def reply_markup(params: Params) -> tuple[JSON | None, JSON | None]:
    """(inline keyboard, other keyboard) from reply_markup, validated like Telegram."""
    markup = params.json("reply_markup", "can't parse reply keyboard markup JSON object")
    if markup is None:
        return None, None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            return None, markup
        raise bad_request("can't parse reply keyboard markup JSON object")
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request("can't parse inline keyboard markup JSON object")
    result: list[list[JSON]] = []
    for row in rows:
        out_row: list[JSON] = []
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            actions = [k for k in _BUTTON_ACTIONS if k in button]
            if not actions:
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            clean = {"text": button["text"]}
            for key in actions:
                clean[key] = button[key]
            if "callback_data" in clean:
                data = clean["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in clean:
                url = _check_url(str(clean["url"]))
                if url is None:
                    raise bad_request("BUTTON_URL_INVALID")
                clean["url"] = url
            out_row.append(clean)
        if out_row:
            result.append(out_row)
    return ({"inline_keyboard": result} if result else None), None


def _send(state: State, chat: Chat, params: Params, **fields: Any) -> JSON:
    """Store a message from the bot (with reply, markup, protection) and return its JSON."""
    reply_to = reply_target(state, chat, params)
    inline, keyboard = reply_markup(params)
    msg = state.add_message(
        chat,
        state.bot.id,
        reply_to=reply_to,
        reply_markup=inline,
        keyboard=keyboard,
        protected=params.boolean("protect_content"),
        **fields,
    )
    return state.message_json(msg)


def _editable(state: State, params: Params, missing: str) -> tuple[Chat, Message]:
    if params.raw("inline_message_id") is not None:
        raise bad_request("the sandbox does not implement inline messages")
    chat = resolve_chat(state, params)
    check_member(state, chat)
    mid = params.integer("message_id", missing="message identifier is not specified")
    msg = state.find_message(chat, mid)
    if msg is None:
        raise bad_request(missing)
    if msg.sender_id != state.bot.id or msg.service:
        raise bad_request("message can't be edited")
    return chat, msg


# -- methods --------------------------------------------------------------------------------

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)


@method
async def get_me(state: State, params: Params) -> Any:
    """getMe."""
    return {
        **state.bot.to_api(),
        "can_join_groups": True,
        "can_read_all_group_messages": not state.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@method
async def get_updates(state: State, params: Params) -> Any:
    """getUpdates: offset confirms, limit, long polling, and 409 when another poller comes."""
    if state.webhook["url"]:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = params.integer("offset") or 0
    limit = min(max(params.integer("limit") or 100, 1), 100)
    timeout = min(max(params.number("timeout") or 0.0, 0.0), 50.0)
    allowed = params.json("allowed_updates", "can't parse allowed updates")
    if allowed is not None:
        state.allowed_updates = set(allowed) if allowed else None
    if offset > 0:
        state.updates = [u for u in state.updates if u["update_id"] >= offset]
    elif offset < 0:
        state.updates = state.updates[offset:]
    state.poll_generation += 1
    generation = state.poll_generation
    state.touch()  # terminates an older long poll
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if state.poll_generation != generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        if state.updates or state.closing:
            return state.updates[:limit] if not state.closing else []
        remaining = deadline - loop.time()
        if remaining <= 0:
            return []
        await state.wait_change(state.version, remaining)


@method
async def set_webhook(state: State, params: Params) -> Any:
    """setWebhook: stored, and the sandbox's webhook sender posts updates to it.

    Like Telegram, the URL must be HTTPS, except plain http on loopback (the bot under test
    has no certificate); `secret_token` is checked like Telegram (1-256 of A-Z a-z 0-9 _ -)."""
    url = params.text("url") or ""
    if url and not (url.startswith("https://") or _LOOPBACK_HTTP.match(url)):
        raise bad_request("bad webhook: HTTPS url must be provided for webhook")
    secret = params.text("secret_token") or ""
    if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise bad_request("secret token contains unallowed characters")
    allowed = params.json("allowed_updates", "can't parse allowed updates")
    if allowed is not None:
        state.allowed_updates = set(allowed) if allowed else None
    if params.boolean("drop_pending_updates"):
        state.updates.clear()
    state.webhook = {"url": url, "secret_token": secret}
    state.touch()
    return True


# Plain-http webhooks are accepted on loopback only (Telegram wants https; a local test
# bot listens on 127.0.0.1).
_LOOPBACK_HTTP = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)")


@method
async def delete_webhook(state: State, params: Params) -> Any:
    """deleteWebhook (drop_pending_updates clears the queue)."""
    if params.boolean("drop_pending_updates"):
        state.updates.clear()
    state.webhook = {"url": ""}
    state.touch()
    return True


@method
async def get_webhook_info(state: State, params: Params) -> Any:
    """getWebhookInfo (with the sender's last error)."""
    info: JSON = {
        "url": state.webhook["url"],
        "has_custom_certificate": False,
        "pending_update_count": len(state.updates),
    }
    if state.webhook["url"]:
        info["max_connections"] = 40
        if state.allowed_updates is not None:
            info["allowed_updates"] = sorted(state.allowed_updates)
        for key in ("last_error_date", "last_error_message"):
            if key in state.webhook:
                info[key] = state.webhook[key]
    return info


@method
async def send_message(state: State, params: Params) -> Any:
    """sendMessage."""
    chat = resolve_chat(state, params)
    check_member(state, chat)
    text, entities = formatted(
        state, params, "text", limit=TEXT_LIMIT, empty="message text is empty",
        too_long="message is too long",
    )  # fmt: skip
    return _send(state, chat, params, text=text, entities=entities)


@method
async def edit_message_text(state: State, params: Params) -> Any:
    """editMessageText (a missing reply_markup removes the keyboard, as on Telegram)."""
    _, msg = _editable(state, params, "message to edit not found")
    if msg.text is None:
        raise bad_request("there is no text in the message to edit")
    text, entities = formatted(
        state, params, "text", limit=TEXT_LIMIT, empty="message text is empty",
        too_long="message is too long",
    )  # fmt: skip
    inline, _ = reply_markup(params)
    if (text, entities, inline) == (msg.text, msg.entities, msg.reply_markup):
        raise bad_request(_NOT_MODIFIED)
    msg.edits.append(msg.text)
    msg.text, msg.entities, msg.reply_markup = text, entities, inline
    msg.edit_date = state.now()
    state.touch()
    return state.message_json(msg)


@method
async def edit_message_reply_markup(state: State, params: Params) -> Any:
    """editMessageReplyMarkup."""
    _, msg = _editable(state, params, "message to edit not found")
    inline, _ = reply_markup(params)
    if inline == msg.reply_markup:
        raise bad_request(_NOT_MODIFIED)
    msg.reply_markup = inline
    msg.edit_date = state.now()
    state.touch()
    return state.message_json(msg)


# Telegram deletes only messages sent less than 48 hours ago, whoever asks.
DELETE_WINDOW_SECONDS = 48 * 3600


@method
async def delete_message(state: State, params: Params) -> Any:
    """deleteMessage: own messages anywhere, others' in private chats or as an admin; none
    older than 48 hours."""
    chat = resolve_chat(state, params)
    check_member(state, chat)
    mid = params.integer("message_id", missing="message identifier is not specified")
    msg = state.find_message(chat, mid)
    if msg is None:
        raise bad_request("message to delete not found")
    if msg.sender_id != state.bot.id and chat.is_group() and chat.bot_status != "administrator":
        raise bad_request("message can't be deleted")
    if state.now() - msg.date >= DELETE_WINDOW_SECONDS:
        raise bad_request("message can't be deleted")
    msg.deleted = True
    state.touch()
    return True


def _source(state: State, params: Params, missing: str) -> Message:
    source_chat = resolve_chat(state, params, "from_chat_id")
    if not source_chat.bot_present():
        raise bad_request("chat not found")
    msg = state.find_message(source_chat, params.integer("message_id", missing=missing))
    if msg is None:
        raise bad_request(missing)
    if msg.service:
        raise bad_request("message can't be copied")
    if msg.protected:
        raise bad_request("message has protected content and can't be forwarded")
    return msg


@method
async def copy_message(state: State, params: Params) -> Any:
    """copyMessage: the content without a link to the original; returns {message_id}."""
    chat = resolve_chat(state, params)
    check_member(state, chat)
    src = _source(state, params, "message to copy not found")
    fields: JSON = {"text": src.text, "entities": list(src.entities), "media": dict(src.media)}
    fields.update(caption=src.caption, caption_entities=list(src.caption_entities))
    if params.raw("caption") is not None and src.media:
        caption, entities = formatted(
            state, params, "caption", limit=CAPTION_LIMIT, empty=None,
            too_long="message caption is too long",
        )  # fmt: skip
        fields.update(caption=caption, caption_entities=entities)
    result = _send(state, chat, params, **fields)
    return {"message_id": result["message_id"]}


@method
async def forward_message(state: State, params: Params) -> Any:
    """forwardMessage: the content with forward_origin."""
    chat = resolve_chat(state, params)
    check_member(state, chat)
    src = _source(state, params, "message to forward not found")
    sender = state.users[src.sender_id] if src.sender_id is not None else state.bot
    origin = {"type": "user", "date": src.date, "sender_user": sender.to_api()}
    msg = state.add_message(
        chat, state.bot.id, text=src.text, entities=list(src.entities), media=dict(src.media),
        caption=src.caption, caption_entities=list(src.caption_entities),
        forward_origin=src.forward_origin or origin, protected=params.boolean("protect_content"),
    )  # fmt: skip
    return state.message_json(msg)


def _media_method(kind: str) -> Method:
    async def send(state: State, params: Params) -> Any:
        chat = resolve_chat(state, params)
        check_member(state, chat)
        meta = _input_file(state, params, kind)
        caption, entities = formatted(
            state, params, "caption", limit=CAPTION_LIMIT, empty=None,
            too_long="message caption is too long",
        )  # fmt: skip
        return _send(
            state, chat, params, media=state.media_field(kind, meta), caption=caption,
            caption_entities=entities,
        )  # fmt: skip

    send.__name__ = f"send_{kind}"
    send.__doc__ = f"send{kind.title()}."
    return method(send)


def _input_file(state: State, params: Params, kind: str) -> JSON:
    """The file a send method names: an upload, attach://name, a known file_id or a URL."""
    value = params.files.get(kind) or params.raw(kind)
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.files.get(value[len("attach://") :])
    if value is None:
        raise bad_request(f"there is no {kind} in the request")
    if isinstance(value, Upload):
        return state.add_file(kind, data=value.data, name=value.filename, mime=value.content_type)
    if not isinstance(value, str):
        raise bad_request("wrong file identifier/HTTP URL specified")
    known = state.files.get(value)
    if known is not None:
        if known["kind"] != kind:
            raise bad_request(f"can't use file of type {known['kind'].title()} as {kind.title()}")
        return dict(known["meta"])
    if value.startswith(("http://", "https://")):
        return state.add_file(kind, name=value.rsplit("/", 1)[-1] or None)
    raise bad_request("wrong file identifier/HTTP URL specified")


for _kind in ("photo", "document", "video", "voice"):
    _media_method(_kind)


def _location(params: Params) -> JSON:
    lat = params.number("latitude", missing="latitude is empty")
    lon = params.number("longitude", missing="longitude is empty")
    assert lat is not None
    assert lon is not None
    if not -90 <= lat <= 90:
        raise bad_request("wrong latitude specified")
    if not -180 <= lon <= 180:
        raise bad_request("wrong longitude specified")
    return {"latitude": lat, "longitude": lon}


@method
async def send_location(state: State, params: Params) -> Any:
    """sendLocation."""
    chat = resolve_chat(state, params)
    check_member(state, chat)
    return _send(state, chat, params, media={"location": _location(params)})


@method
async def send_venue(state: State, params: Params) -> Any:
    """sendVenue (the message carries both `venue` and `location`, as on Telegram)."""
    chat = resolve_chat(state, params)
    check_member(state, chat)
    location = _location(params)
    title, address = params.text("title"), params.text("address")
    if not title:
        raise bad_request("venue title is empty")
    if address is None:
        raise bad_request("venue address is empty")
    venue = {"location": location, "title": title, "address": address}
    return _send(state, chat, params, media={"location": location, "venue": venue})


@method
async def answer_callback_query(state: State, params: Params) -> Any:
    """answerCallbackQuery (each query can be answered once)."""
    query = state.callbacks.get(params.text("callback_query_id") or "")
    if query is None or query.answer is not None:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.text("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answer = {
        "text": text,
        "show_alert": params.boolean("show_alert"),
        "url": params.text("url"),
        "cache_time": params.integer("cache_time") or 0,
    }
    state.touch()
    return True


_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)


def _commands_key(state: State, params: Params) -> str:
    bad = "can't parse BotCommandScope JSON object"
    scope = params.json("scope", bad) or {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
        raise bad_request(bad)
    kind = scope["type"]
    if kind in ("chat", "chat_administrators", "chat_member"):
        # As Telegram: the chat must exist and be one the bot may see (a person must have
        # started a private chat); chat_member also names a member of a group.
        raw = scope.get("chat_id")
        if not isinstance(raw, int | str) or isinstance(raw, bool) or raw == "":
            raise bad_request(bad)
        try:
            chat = state.chats.get(int(raw))
        except ValueError:
            chat = None
        if chat is None or (chat.type == "private" and not state.users[chat.id].started):
            raise bad_request("chat not found")
        if kind != "chat" and not chat.is_group():
            raise bad_request("chat not found" if kind == "chat_member" else bad)
        normal: JSON = {"type": kind, "chat_id": chat.id}
        if kind == "chat_member":
            user = scope.get("user_id")
            if not isinstance(user, int) or user not in chat.members:
                raise bad_request("user not found")
            normal["user_id"] = user
        scope = normal
    else:
        scope = {"type": kind}
    language = params.text("language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return json.dumps(scope, sort_keys=True) + "|" + language


@method
async def set_my_commands(state: State, params: Params) -> Any:
    """setMyCommands."""
    commands = params.json("commands", "can't parse commands JSON object")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    clean: list[JSON] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse commands JSON object")
        name, description = str(item.get("command", "")), str(item.get("description", ""))
        if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        clean.append({"command": name, "description": description})
    key = _commands_key(state, params)
    if clean:
        state.commands[key] = clean
    else:
        state.commands.pop(key, None)
    state.touch()
    return True


@method
async def get_my_commands(state: State, params: Params) -> Any:
    """getMyCommands (exact scope and language, no fallback)."""
    return state.commands.get(_commands_key(state, params), [])


@method
async def delete_my_commands(state: State, params: Params) -> Any:
    """deleteMyCommands."""
    state.commands.pop(_commands_key(state, params), None)
    state.touch()
    return True


def _visible_chat(state: State, params: Params) -> Chat:
    chat = resolve_chat(state, params)
    if chat.type == "private" and not state.users[chat.id].started:
        raise bad_request("chat not found")
    if chat.is_group() and chat.migrated_to is None:
        check_member(state, chat)
    return chat


@method
async def get_chat(state: State, params: Params) -> Any:
    """getChat (a ChatFullInfo)."""
    chat = _visible_chat(state, params)
    gifts = ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription")
    info: JSON = {
        **state.chat_json(chat),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {**dict.fromkeys(gifts, False), "gifts_from_channels": False},
    }
    if chat.migrated_from is not None:
        info["migrated_from_chat_id"] = chat.migrated_from  # not in the API; harmless extra
    return info


@method
async def get_chat_member(state: State, params: Params) -> Any:
    """getChatMember."""
    chat = _visible_chat(state, params)
    user_id = params.integer(
        "user_id", missing="user_id is empty", invalid="invalid user_id specified"
    )
    if user_id not in state.users:
        raise bad_request("user not found")
    if chat.type == "private" and user_id not in (chat.id, state.bot.id):
        raise bad_request("user not found")
    return state.member_json(chat, int(user_id))


@method
async def get_chat_administrators(state: State, params: Params) -> Any:
    """getChatAdministrators."""
    chat = _visible_chat(state, params)
    if chat.type == "private":
        raise bad_request("there are no administrators in the private chat")
    ids = [u for u, s in chat.members.items() if s in ("creator", "administrator")]
    if chat.bot_status == "administrator":
        ids.append(state.bot.id)
    return [state.member_json(chat, u) for u in ids]


@method
async def get_chat_member_count(state: State, params: Params) -> Any:
    """getChatMemberCount."""
    chat = _visible_chat(state, params)
    if chat.type == "private":
        return 2
    people = sum(1 for s in chat.members.values() if s in ("creator", "administrator", "member"))
    return people + (1 if chat.bot_present() else 0)


@method
async def leave_chat(state: State, params: Params) -> Any:
    """leaveChat: a left_chat_member service message and a my_chat_member update."""
    chat = resolve_chat(state, params)
    if chat.type == "private":
        raise bad_request("chat member status can't be changed in private chats")
    check_member(state, chat)
    old = state.member_json(chat, state.bot.id)
    chat.bot_status = "left"
    state.add_message(chat, state.bot.id, service={"left_chat_member": state.bot.to_api()})
    state.chat_member_update(
        chat, state.bot.id, state.bot.id, old, state.member_json(chat, state.bot.id)
    )
    return True


@method
async def send_chat_action(state: State, params: Params) -> Any:
    """sendChatAction (recorded for tests)."""
    chat = resolve_chat(state, params)
    check_member(state, chat)
    action = params.text("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    state.chat_actions.append({"chat_id": chat.id, "action": action, "date": state.now()})
    return True


@method
async def get_file(state: State, params: Params) -> Any:
    """getFile (download from /file/bot<token>/<file_path>)."""
    known = state.files.get(params.text("file_id") or "")
    if known is None:
        raise bad_request("invalid file_id")
    meta = known["meta"]
    if meta["file_size"] > GET_FILE_LIMIT:  # the cloud Bot API serves files up to 20 MB
        raise bad_request("file is too big")
    return {
        "file_id": meta["file_id"],
        "file_unique_id": meta["file_unique_id"],
        "file_size": meta["file_size"],
        "file_path": known["path"],
    }
