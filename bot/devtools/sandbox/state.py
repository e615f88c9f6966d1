"""The sandbox's world: users, chats, messages, the bot's update queue, and Bot API JSON shapes.

Everything here is plain data plus the rules Telegram applies when people act (membership,
who may message whom, which updates the bot receives). The HTTP layer (`server.py`) and the
Bot API methods (`methods.py`) sit on top; nothing here does I/O. Every change bumps `version`
and wakes waiters, which is how long polls and `wait_for` stay event-driven.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Updates a bot gets when it does not say otherwise (Bot API: all but these three).
DEFAULT_EXCLUDED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
SERVICE_FIELDS = (
    "new_chat_members", "left_chat_member", "group_chat_created", "supergroup_chat_created",
    "migrate_to_chat_id", "migrate_from_chat_id", "new_chat_title",
)  # fmt: skip
MEDIA_FIELDS = ("photo", "document", "video", "voice", "location", "venue", "poll")
MEMBER_STATUSES = ("creator", "administrator", "member")


class RawUpdate(dict[str, Any]):
    """An update queued as raw JSON text, sent to the bot byte for byte (malformed-update
    tests); as a dict it holds only its queue key, `update_id`."""

    def __init__(self, update_id: int, text: str) -> None:
        super().__init__(update_id=update_id)
        self.text = text


def api_json(value: Any) -> str:
    """JSON text of a Bot API answer, with queued raw updates spliced in as they are."""
    if isinstance(value, RawUpdate):
        return value.text
    if isinstance(value, list):
        return "[" + ",".join(api_json(v) for v in value) + "]"
    if isinstance(value, dict) and any(isinstance(v, (RawUpdate, list)) for v in value.values()):
        return "{" + ",".join(f"{json.dumps(k)}:{api_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


class ApiError(Exception):
    """A Bot API error: HTTP status = error_code, Telegram's description and parameters."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> JSON:
        """Telegram's error object."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str, parameters: JSON | None = None) -> ApiError:
    """A 400 with Telegram's "Bad Request: " prefix."""
    return ApiError(400, f"Bad Request: {text}", parameters)


class ControlError(ValueError):
    """A control request that makes no sense (unknown user, not a member…)."""


@dataclass
class User:
    """A person (or the bot) as Telegram knows them."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    started: bool = False  # has a private chat with the bot (sent it anything)
    blocked: bool = False  # has blocked the bot

    def to_api(self) -> JSON:
        """The Bot API `User` object."""
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    @property
    def name(self) -> str:
        """Display name."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name


@dataclass
class Message:
    """One message in one chat, as stored (the API shape is built by `State.message_json`)."""

    chat_id: int
    message_id: int
    sender_id: int | None
    date: int
    text: str | None = None
    entities: list[JSON] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[JSON] = field(default_factory=list)
    media: JSON = field(default_factory=dict)  # photo/document/…/location/venue/poll
    service: JSON = field(default_factory=dict)  # new_chat_members, migrate_to_chat_id…
    reply_to: int | None = None
    edit_date: int | None = None
    reply_markup: JSON | None = None  # inline keyboard only (others are not returned)
    keyboard: JSON | None = None  # reply keyboard / remove / force_reply the bot attached
    protected: bool = False
    forward_origin: JSON | None = None
    deleted: bool = False
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first


@dataclass
class Chat:
    """A private chat, group or supergroup."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    members: dict[int, str] = field(default_factory=dict)  # user id → status
    bot_status: str = "left"  # member, administrator, left, kicked
    messages: dict[int, Message] = field(default_factory=dict)
    next_message_id: int = 1
    migrated_to: int | None = None
    migrated_from: int | None = None

    def is_group(self) -> bool:
        """Group or supergroup."""
        return self.type in ("group", "supergroup")

    def bot_present(self) -> bool:
        """Whether the bot is in the chat (private chats: always, once they exist)."""
        return self.type == "private" or self.bot_status in ("member", "administrator")


@dataclass
class CallbackQuery:
    """A pressed inline button and the bot's answer, if any."""

    id: str
    chat_id: int
    message_id: int
    user_id: int
    data: str | None
    answer: JSON | None = None


class State:
    """All sandbox data plus the change notifier."""

    def __init__(
        self,
        token: str,
        *,
        bot_username: str = "daraja_sandbox_bot",
        bot_name: str = "Daraja",
        privacy_mode: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.clock = clock
        self.privacy_mode = privacy_mode
        self.bot = User(int(token.split(":", 1)[0]), bot_name, username=bot_username, is_bot=True)
        self.version = 0
        self.closing = False
        self._changed = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        """Forget every user, chat, update, command and webhook (the bot identity stays)."""
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.chats: dict[int, Chat] = {}
        self.updates: list[JSON] = []
        self.next_update_id = 10_001
        self.allowed_updates: set[str] | None = None  # None: the default set
        self.webhook: JSON = {"url": ""}
        self.commands: dict[str, list[JSON]] = {}
        self.callbacks: dict[str, CallbackQuery] = {}
        self.files: dict[str, JSON] = {}
        self.chat_actions: list[JSON] = []
        self.poll_generation = 0
        self._ids = itertools.count(1)
        self._next_user_id = 100_000_001
        self._next_group = 1
        self.touch()

    # -- change notification -------------------------------------------------------------

    def touch(self) -> None:
        """Record a change and wake everyone waiting for one."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(
        self,
        since: int,
        timeout: float,  # noqa: ASYNC109 (overall deadline)
    ) -> int:
        """Wait until `version` differs from `since` (or timeout/closing); return the version."""
        if self.version == since and not self.closing and timeout > 0:
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        return self.version

    def close(self) -> None:
        """Shutting down: wake all long polls and waiters for good."""
        self.closing = True
        self.touch()

    def now(self) -> int:
        """Unix time in whole seconds (Telegram's date unit)."""
        return int(self.clock())

    def serial(self) -> int:
        """A fresh number for ids that only need to be unique."""
        return next(self._ids)

    # -- users and chats -----------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        *,
        id: int | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> User:
        """Create a person."""
        if id is None:
            while self._next_user_id in self.users:
                self._next_user_id += 1
            id = self._next_user_id
        if id <= 0:
            raise ControlError("user ids are positive")
        if id in self.users:
            raise ControlError(f"user {id} already exists")
        user = User(id, first_name, last_name, username, language_code)
        self.users[id] = user
        self.touch()
        return user

    def user(self, user_id: int) -> User:
        """A known person (ControlError otherwise)."""
        user = self.users.get(int(user_id))
        if user is None:
            raise ControlError(f"no user {user_id}; create it first")
        return user

    def chat(self, chat_id: int) -> Chat:
        """A known chat (ControlError otherwise)."""
        chat = self.chats.get(int(chat_id))
        if chat is None:
            raise ControlError(f"no chat {chat_id}; create it first")
        return chat

    def new_group_id(self, type: str) -> int:
        """A fresh chat id of the shape Telegram uses for this chat type."""
        n = self._next_group
        self._next_group += 1
        return -(1_000_000_000_000 + n) if type == "supergroup" else -(4_000_000_000 + n)

    def private_chat(self, user_id: int) -> Chat:
        """The private chat between a person and the bot (created on demand)."""
        user = self.user(user_id)
        chat = self.chats.get(user.id)
        if chat is None:
            chat = Chat(user.id, "private", members={user.id: "member"})
            self.chats[user.id] = chat
        return chat

    def chat_json(self, chat: Chat) -> JSON:
        """The Bot API `Chat` object."""
        if chat.type == "private":
            user = self.users[chat.id]
            data: JSON = {"id": chat.id, "first_name": user.first_name}
            if user.last_name:
                data["last_name"] = user.last_name
            if user.username:
                data["username"] = user.username
            data["type"] = "private"
            return data
        data = {"id": chat.id, "title": chat.title or "", "type": chat.type}
        if chat.username:
            data["username"] = chat.username
        return data

    def member_json(self, chat: Chat, user_id: int) -> JSON:
        """The Bot API `ChatMember` object for a user in a chat."""
        user = self.users[user_id]
        status = chat.bot_status if user_id == self.bot.id else chat.members.get(user_id, "left")
        if chat.type == "private":
            status = "member"
        data: JSON = {"user": user.to_api(), "status": status}
        if status == "creator":
            data["is_anonymous"] = False
        elif status == "administrator":
            rights = (
                "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                "can_restrict_members", "can_change_info", "can_invite_users", "can_pin_messages",
                "can_post_stories", "can_edit_stories", "can_delete_stories",
            )  # fmt: skip
            data.update({"can_be_edited": user_id == self.bot.id, "is_anonymous": False})
            data.update(dict.fromkeys(rights, True))
            data["can_promote_members"] = False
            if chat.type == "supergroup":
                data["can_manage_topics"] = False
        elif status == "kicked":
            data["until_date"] = 0
        return data

    # -- messages ------------------------------------------------------------------------

    def add_message(self, chat: Chat, sender_id: int | None, **fields: Any) -> Message:
        """Store a new message with the chat's next id."""
        msg = Message(chat.id, chat.next_message_id, sender_id, self.now(), **fields)
        chat.next_message_id += 1
        chat.messages[msg.message_id] = msg
        self.touch()
        return msg

    def find_message(self, chat: Chat, message_id: int | None) -> Message | None:
        """A message that still exists, or None."""
        if message_id is None:
            return None
        msg = chat.messages.get(int(message_id))
        return None if msg is None or msg.deleted else msg

    def message_json(self, msg: Message, *, with_reply: bool = True) -> JSON:
        """The Bot API `Message` object, field by field as python-telegram-bot parses it."""
        chat = self.chats[msg.chat_id]
        data: JSON = {"message_id": msg.message_id}
        if msg.sender_id is not None:
            data["from"] = self.users[msg.sender_id].to_api()
        data["chat"] = self.chat_json(chat)
        data["date"] = msg.date
        if msg.forward_origin:
            data["forward_origin"] = msg.forward_origin
        if msg.reply_to is not None and with_reply:
            target = self.find_message(chat, msg.reply_to)
            if target is not None:
                data["reply_to_message"] = self.message_json(target, with_reply=False)
        if msg.edit_date is not None:
            data["edit_date"] = msg.edit_date
        if msg.protected:
            data["has_protected_content"] = True
        if msg.text is not None:
            data["text"] = msg.text
            if msg.entities:
                data["entities"] = msg.entities
        data.update(msg.media)
        if msg.caption is not None:
            data["caption"] = msg.caption
            if msg.caption_entities:
                data["caption_entities"] = msg.caption_entities
        data.update(msg.service)
        if msg.reply_markup is not None:
            data["reply_markup"] = msg.reply_markup
        return data

    # -- the bot's update queue ----------------------------------------------------------

    def wants(self, kind: str) -> bool:
        """Whether the bot's allowed_updates setting lets updates of this kind be created."""
        if self.allowed_updates is None:
            return kind not in DEFAULT_EXCLUDED
        return kind in self.allowed_updates

    def push_update(self, kind: str, payload: JSON) -> None:
        """Queue an update for the bot (if its allowed_updates accepts this kind)."""
        if not self.wants(kind):
            return
        self.updates.append({"update_id": self.next_update_id, kind: payload})
        self.next_update_id += 1
        self.touch()

    def push_raw_update(self, text: str) -> int:
        """Queue raw JSON text as the bot's next update; `__UPDATE_ID__` in it becomes the
        queue's next id, else its own top-level `update_id` is its key. Returns the key."""
        from bot.delivery.raw_updates import top_level_update_id

        if "__UPDATE_ID__" in text:
            key = self.next_update_id
            text = text.replace("__UPDATE_ID__", str(key))
        else:
            found = top_level_update_id(text)
            key = found if found is not None else self.next_update_id
        self.next_update_id = max(self.next_update_id, key + 1)
        self.updates.append(RawUpdate(key, text))
        self.touch()
        return key

    def bot_sees(self, chat: Chat, msg: Message) -> bool:
        """Whether the bot receives this message (membership and privacy mode)."""
        if chat.type == "private":
            return not self.users[chat.id].blocked
        if not chat.bot_present():
            return False
        if not self.privacy_mode or chat.bot_status == "administrator" or msg.service:
            return True
        text = msg.text or msg.caption or ""
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            return "@" not in command or command.split("@", 1)[1] == self.bot.username
        replied = self.find_message(chat, msg.reply_to)
        return replied is not None and replied.sender_id == self.bot.id

    def deliver(self, chat: Chat, msg: Message, kind: str = "message") -> None:
        """Queue a person's new or edited message for the bot if it would see it."""
        if msg.sender_id != self.bot.id and self.bot_sees(chat, msg):
            self.push_update(kind, self.message_json(msg))

    def chat_member_update(
        self, chat: Chat, actor_id: int, user_id: int, old: JSON, new: JSON
    ) -> None:
        """Queue my_chat_member (about the bot) or chat_member (about a person, admins only)."""
        payload = {
            "chat": self.chat_json(chat),
            "from": self.users[actor_id].to_api(),
            "date": self.now(),
            "old_chat_member": old,
            "new_chat_member": new,
        }
        if user_id == self.bot.id:
            self.push_update("my_chat_member", payload)
        elif chat.bot_status == "administrator":
            self.push_update("chat_member", payload)

    # -- files ---------------------------------------------------------------------------

    def add_file(
        self,
        kind: str,
        *,
        data: bytes | None = None,
        name: str | None = None,
        mime: str | None = None,
        duration: int | None = None,
    ) -> JSON:
        """Register a file and return its Bot API object (shape depends on kind)."""
        n = self.serial()
        content = data if data is not None else f"sandbox {kind} #{n}".encode()
        file_id = f"SBX{kind[:3].upper()}{n:06d}AgADsandbox"
        meta: JSON = {"file_id": file_id, "file_unique_id": f"U{n:06d}{kind[:2]}"}
        meta["file_size"] = len(content)
        if kind == "photo":
            meta.update({"width": 1280, "height": 960})
        elif kind == "video":
            meta.update({"width": 640, "height": 360, "duration": 5, "mime_type": "video/mp4"})
        elif kind == "voice":
            meta.update({"duration": 3 if duration is None else duration})
            meta["mime_type"] = mime or "audio/ogg"
        elif kind == "document":
            meta.update({"file_name": name or f"file{n}.bin"})
            meta["mime_type"] = mime or "application/octet-stream"
        # Telegram's file paths name the kind's folder and an extension (voice/file_7.oga).
        ext = {"voice": ".oga", "photo": ".jpg", "video": ".mp4"}.get(kind, "")
        path = f"{kind}s/file_{n}{ext}"
        self.files[file_id] = {"kind": kind, "meta": meta, "data": content, "path": path}
        return dict(meta)

    def media_field(self, kind: str, meta: JSON) -> JSON:
        """The message fields for a file of this kind (photos come as a list of sizes)."""
        if kind == "photo":
            small = {**meta, "width": 320, "height": 240}
            small["file_unique_id"] = meta["file_unique_id"] + "s"
            return {"photo": [small, meta]}
        return {kind: meta}
