"""Control operations: what people do in the sandbox, what they see, and test knobs.

Every operation takes and returns JSON-able values, so the same code serves the HTTP routes
(`POST /_sandbox/<op>`) and the in-process client. People follow Telegram's rules: only
members post in a group, a private chat starts when the person writes to the bot.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bot.devtools.sandbox.flood import FaultInjector, FloodControl, RequestLog
from bot.devtools.sandbox.html import HtmlError, normalize, parse_html, render_html
from bot.devtools.sandbox.state import (
    JSON,
    MEMBER_STATUSES,
    CallbackQuery,
    Chat,
    ControlError,
    Message,
    State,
    User,
)

Op = Callable[..., Any]


def operations() -> list[tuple[str, str, str]]:
    """Every control operation: name, arguments and what it does (for --help and errors)."""
    import inspect

    found = []
    for attr in sorted(vars(Controller)):
        if not attr.startswith("op_"):
            continue
        func = getattr(Controller, attr)
        params = [p for p in inspect.signature(func).parameters.values() if p.name != "self"]
        shown = []
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                shown.append(f"{p.name}...")
            else:
                shown.append(p.name if p.default is p.empty else f"[{p.name}]")
        doc = (inspect.getdoc(func) or "").split("\n", 1)[0].rstrip(".;")
        doc = re.sub(r"^Issue \d+: ", "", doc)
        found.append((attr.removeprefix("op_"), " ".join(shown), doc))
    return found


class Controller:
    """The control operations over one sandbox's state, flood control, faults and log."""

    def __init__(
        self, state: State, flood: FloodControl, faults: FaultInjector, log: RequestLog
    ) -> None:
        self.state = state
        self.flood = flood
        self.faults = faults
        self.log = log
        self._initial_limits = flood.limits
        self.webhook: Any = None  # the server's WebhookSender, when there is one
        self._ops: dict[str, Op] = {
            name.removeprefix("op_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("op_")
        }

    async def dispatch(self, op: str, args: JSON) -> Any:
        """Run one operation by name with keyword arguments."""
        func = self._ops.get(op)
        if func is None:
            names = ", ".join(name for name, _, _ in operations())
            raise ControlError(f"unknown control operation {op!r}; operations: {names}")
        try:
            result = func(**args)
        except TypeError as exc:
            raise ControlError(f"{op}: {exc}") from None
        if isinstance(result, Awaitable):
            result = await result
        return result

    async def op_batch(self, calls: list[JSON]) -> list[Any]:
        """Run several operations in order in one request (`[{"op": ..., "args": {...}}]`);
        returns their results. Load generators use it so posting a burst costs the bot's
        process nothing."""
        if not isinstance(calls, list):
            raise ControlError("batch: calls must be a list")
        results = []
        for call in calls:
            if not isinstance(call, dict) or call.get("op") == "batch":
                raise ControlError("batch: each call is {op, args} and not itself a batch")
            args = call.get("args") or {}
            if not isinstance(args, dict):
                raise ControlError("batch: args must be an object")
            results.append(await self.dispatch(str(call.get("op")), args))
        return results

    # -- people and chats ----------------------------------------------------------------

    def op_create_user(
        self,
        first_name: str,
        id: int | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> JSON:
        """Create a person."""
        user = self.state.add_user(
            first_name, id=id, last_name=last_name, username=username, language_code=language_code
        )
        return user.to_api()

    def op_create_chat(
        self,
        type: str = "group",
        title: str | None = None,
        members: list[int] | None = None,
        admins: list[int] | None = None,
        owner: int | None = None,
        id: int | None = None,
        username: str | None = None,
        bot: str | None = None,
    ) -> JSON:
        """Create a group or supergroup with members; `bot` "member"/"administrator" adds it."""
        state = self.state
        if type not in ("group", "supergroup"):
            raise ControlError(
                "create_chat makes groups and supergroups; private chats start "
                "when a person writes to the bot (say(user_id, user_id, ...))"
            )
        people = list(dict.fromkeys([*(admins or []), *(members or [])]))
        if owner is not None and owner not in people:
            people.insert(0, owner)
        if not people:
            raise ControlError("a group needs at least one member")
        for user_id in people:
            state.user(user_id)
        chat_id = id if id is not None else state.new_group_id(type)
        if chat_id >= 0 or chat_id in state.chats:
            raise ControlError(f"chat id {chat_id} is taken or not a group id (negative)")
        owner = owner if owner is not None else people[0]
        chat = Chat(chat_id, type, title=title or f"Group {-chat_id}", username=username)
        for user_id in people:
            chat.members[user_id] = "administrator" if user_id in (admins or []) else "member"
        chat.members[owner] = "creator"
        state.chats[chat_id] = chat
        state.touch()
        if bot is not None:
            self.op_add_bot(chat_id, by=owner, admin=bot == "administrator")
        return self._chat_info(chat)

    def _chat_info(self, chat: Chat) -> JSON:
        return {
            **self.state.chat_json(chat),
            "members": {str(k): v for k, v in chat.members.items()},
            "bot_status": chat.bot_status,
            "migrated_to": chat.migrated_to,
            "migrated_from": chat.migrated_from,
        }

    def op_chat(self, chat_id: int) -> JSON:
        """One chat's description (members, bot status, migration)."""
        return self._chat_info(self.state.chat(chat_id))

    def _by(self, chat: Chat, by: int | None) -> User:
        if by is None:
            by = next((u for u, s in chat.members.items() if s == "creator"), None)
        if by is None or chat.members.get(by) not in MEMBER_STATUSES:
            raise ControlError(f"user {by} is not a member of chat {chat.id}")
        return self.state.user(by)

    def op_add_bot(self, chat_id: int, by: int | None = None, admin: bool = False) -> JSON | None:
        """Add the bot to a group (or promote/demote it if present); the bot gets updates."""
        state = self.state
        chat = state.chat(chat_id)
        if not chat.is_group() or chat.migrated_to is not None:
            raise ControlError("the bot can be added to live groups and supergroups only")
        actor = self._by(chat, by)
        old = state.member_json(chat, state.bot.id)
        present = chat.bot_present()
        chat.bot_status = "administrator" if admin else "member"
        state.chat_member_update(
            chat, actor.id, state.bot.id, old, state.member_json(chat, state.bot.id)
        )
        if present:
            state.touch()
            return None
        msg = state.add_message(chat, actor.id, service={"new_chat_members": [state.bot.to_api()]})
        state.deliver(chat, msg)
        return self._view(msg)

    def op_remove_bot(self, chat_id: int, by: int | None = None) -> JSON:
        """Kick the bot from a group."""
        state = self.state
        chat = state.chat(chat_id)
        actor = self._by(chat, by)
        if not chat.bot_present() or chat.type == "private":
            raise ControlError("the bot is not in this group")
        old = state.member_json(chat, state.bot.id)
        msg = state.add_message(chat, actor.id, service={"left_chat_member": state.bot.to_api()})
        state.deliver(chat, msg)
        chat.bot_status = "kicked"
        state.chat_member_update(
            chat, actor.id, state.bot.id, old, state.member_json(chat, state.bot.id)
        )
        return self._view(msg)

    def op_join(self, chat_id: int, user_id: int, by: int | None = None) -> JSON:
        """A person joins a group (or is added by `by`): a new_chat_members message."""
        state = self.state
        chat = state.chat(chat_id)
        user = state.user(user_id)
        if not chat.is_group() or chat.migrated_to is not None:
            raise ControlError("people join live groups and supergroups only")
        if chat.members.get(user.id) in MEMBER_STATUSES:
            raise ControlError(f"user {user.id} is already a member of chat {chat.id}")
        actor = self._by(chat, by) if by is not None else user
        old = state.member_json(chat, user.id)
        chat.members[user.id] = "member"
        msg = state.add_message(chat, actor.id, service={"new_chat_members": [user.to_api()]})
        state.deliver(chat, msg)
        state.chat_member_update(chat, actor.id, user.id, old, state.member_json(chat, user.id))
        return self._view(msg)

    def op_leave(self, chat_id: int, user_id: int) -> JSON:
        """A person leaves a group: a left_chat_member message."""
        state = self.state
        chat = state.chat(chat_id)
        user = self._by(chat, user_id)
        old = state.member_json(chat, user.id)
        msg = state.add_message(chat, user.id, service={"left_chat_member": user.to_api()})
        state.deliver(chat, msg)
        chat.members[user.id] = "left"
        state.chat_member_update(chat, user.id, user.id, old, state.member_json(chat, user.id))
        return self._view(msg)

    def op_migrate(self, chat_id: int, by: int | None = None) -> JSON:
        """Upgrade a group to a supergroup (service messages in both); returns the new chat."""
        state = self.state
        old = state.chat(chat_id)
        if old.type != "group" or old.migrated_to is not None:
            raise ControlError("only a live basic group can be migrated")
        actor = self._by(old, by)
        new = Chat(
            state.new_group_id("supergroup"), "supergroup", title=old.title,
            members=dict(old.members), bot_status=old.bot_status, migrated_from=old.id,
        )  # fmt: skip
        state.chats[new.id] = new
        first = state.add_message(old, actor.id, service={"migrate_to_chat_id": new.id})
        state.deliver(old, first)
        old.migrated_to = new.id
        second = state.add_message(new, actor.id, service={"migrate_from_chat_id": old.id})
        state.deliver(new, second)
        return self._chat_info(new)

    def op_block_bot(self, user_id: int, blocked: bool = True) -> JSON:
        """A person blocks (or unblocks) the bot."""
        user = self.state.user(user_id)
        user.blocked = blocked
        self.state.touch()
        return user.to_api()

    # -- what people say -----------------------------------------------------------------

    def _writable(self, chat_id: int, user_id: int) -> tuple[Chat, User]:
        state = self.state
        user = state.user(user_id)
        if chat_id == user.id:
            chat = state.private_chat(user.id)
            user.started = True
            user.blocked = False
            return chat, user
        if chat_id > 0:
            raise ControlError(f"chat {chat_id} is the private chat of another user")
        chat = state.chat(chat_id)
        if chat.migrated_to is not None:
            raise ControlError(f"chat {chat_id} was upgraded to {chat.migrated_to}; post there")
        self._by(chat, user.id)
        return chat, user

    def op_post(
        self,
        chat_id: int,
        user_id: int,
        kind: str = "text",
        text: str | None = None,
        html: str | None = None,
        entities: list[JSON] | None = None,
        caption: str | None = None,
        reply_to: int | None = None,
        file_name: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        title: str | None = None,
        address: str | None = None,
        question: str | None = None,
        options: list[str] | None = None,
        forward_from: int | None = None,
        forward_name: str | None = None,
        data_b64: str | None = None,
        duration: int | None = None,
    ) -> JSON:
        """A person posts a message of any kind; the bot gets it if it would on Telegram
        (a file's bytes may be given as `data_b64`, a voice note's length as `duration`)."""
        state = self.state
        chat, user = self._writable(chat_id, user_id)
        fields: JSON = {}
        if kind == "text":
            fields["text"], fields["entities"] = self._formatted(text, html, entities)
            if not fields["text"]:
                raise ControlError("a text message needs text")
        elif kind in ("photo", "document", "video", "voice"):
            data = None
            if data_b64 is not None:
                try:
                    data = base64.b64decode(data_b64, validate=True)
                except ValueError as exc:
                    raise ControlError("data_b64 is not base64") from exc
            meta = state.add_file(kind, name=file_name, data=data, duration=duration)
            fields["media"] = state.media_field(kind, meta)
            if caption or html:
                fields["caption"], fields["caption_entities"] = self._formatted(
                    caption, html, entities
                )
        elif kind in ("location", "venue"):
            if latitude is None or longitude is None:
                raise ControlError(f"a {kind} needs latitude and longitude")
            location = {"latitude": float(latitude), "longitude": float(longitude)}
            fields["media"] = {"location": location}
            if kind == "venue":
                venue = {"location": location, "title": title or "", "address": address or ""}
                fields["media"]["venue"] = venue
        elif kind == "poll":
            if not question or not options or len(options) < 2:
                raise ControlError("a poll needs a question and at least two options")
            fields["media"] = {"poll": self._poll(question, options)}
        else:
            raise ControlError(f"unknown message kind {kind!r}")
        if reply_to is not None and state.find_message(chat, reply_to) is None:
            raise ControlError(f"no message {reply_to} in chat {chat.id} to reply to")
        if forward_from is not None:
            origin = state.user(forward_from).to_api()
            fields["forward_origin"] = {"type": "user", "date": state.now(), "sender_user": origin}
        elif forward_name is not None:
            fields["forward_origin"] = {
                "type": "hidden_user", "date": state.now(), "sender_user_name": forward_name,
            }  # fmt: skip
        msg = state.add_message(chat, user.id, reply_to=reply_to, **fields)
        state.deliver(chat, msg)
        return self._view(msg)

    def _formatted(
        self, text: str | None, html: str | None, entities: list[JSON] | None
    ) -> tuple[str, list[JSON]]:
        if html is not None:
            try:
                text, entities = parse_html(html)
            except HtmlError as exc:
                raise ControlError(f"bad HTML: {exc}") from None
        return normalize(text or "", list(entities or []))

    def _poll(self, question: str, options: list[str]) -> JSON:
        return {
            "id": str(5_000_000_000 + self.state.serial()),
            "question": question,
            "options": [
                {"text": o, "voter_count": 0, "persistent_id": str(i)}
                for i, o in enumerate(options)
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }

    def op_edit(
        self,
        chat_id: int,
        user_id: int,
        message_id: int,
        text: str | None = None,
        html: str | None = None,
        entities: list[JSON] | None = None,
    ) -> JSON:
        """A person edits their message (text, or caption of media): an edited_message update."""
        state = self.state
        chat, user = self._writable(chat_id, user_id)
        msg = state.find_message(chat, message_id)
        if msg is None or msg.sender_id != user.id or msg.service:
            raise ControlError(f"user {user.id} has no message {message_id} in chat {chat.id}")
        new_text, new_entities = self._formatted(text, html, entities)
        if msg.text is not None:
            if not new_text or (new_text, new_entities) == (msg.text, msg.entities):
                raise ControlError("the edit must change the text")
            msg.edits.append(msg.text)
            msg.text, msg.entities = new_text, new_entities
        elif msg.media and not msg.media.keys() & {"location", "venue", "poll"}:
            msg.edits.append(msg.caption or "")
            msg.caption, msg.caption_entities = new_text or None, new_entities
        else:
            raise ControlError("this message has no text or caption to edit")
        msg.edit_date = state.now()
        state.touch()
        state.deliver(chat, msg, "edited_message")
        return self._view(msg)

    def op_press(
        self,
        chat_id: int,
        user_id: int,
        message_id: int,
        data: str | None = None,
        text: str | None = None,
    ) -> str:
        """A person presses an inline button (by callback data or label); returns the query id."""
        state = self.state
        chat, user = self._writable(chat_id, user_id)
        msg = state.find_message(chat, message_id)
        if msg is None or msg.reply_markup is None:
            raise ControlError(f"message {message_id} in chat {chat.id} has no inline keyboard")
        buttons = [b for row in msg.reply_markup["inline_keyboard"] for b in row]
        button = next(
            (b for b in buttons if (data is not None and b.get("callback_data") == data)
             or (text is not None and b["text"] == text)),
            None,
        )  # fmt: skip
        if button is None or "callback_data" not in button:
            raise ControlError(f"no callback button {data or text!r} on message {message_id}")
        query = CallbackQuery(
            str(7_000_000_000_000 + state.serial()), chat.id, msg.message_id, user.id,
            button["callback_data"],
        )  # fmt: skip
        state.callbacks[query.id] = query
        state.push_update(
            "callback_query",
            {
                "id": query.id,
                "from": user.to_api(),
                "message": state.message_json(msg),
                "chat_instance": str(abs(chat.id) * 31 + 7),
                "data": query.data,
            },
        )
        return query.id

    def op_callback_answer(self, query_id: str) -> JSON | None:
        """The bot's answer to a pressed button (None while unanswered)."""
        query = self.state.callbacks.get(query_id)
        if query is None:
            raise ControlError(f"no callback query {query_id}")
        return query.answer

    # -- what people see -----------------------------------------------------------------

    def _view(self, msg: Message) -> JSON:
        state = self.state
        sender = state.users.get(msg.sender_id) if msg.sender_id is not None else None
        body = msg.text if msg.text is not None else msg.caption
        entities = msg.entities if msg.text is not None else msg.caption_entities
        buttons = [
            [{k: v for k, v in b.items()} for b in row]
            for row in (msg.reply_markup or {}).get("inline_keyboard", [])
        ]
        kind = next((k for k in ("venue", *MEDIA_KINDS) if k in msg.media), None)
        kind = kind or ("service" if msg.service else "text")
        return {
            "chat_id": msg.chat_id,
            "message_id": msg.message_id,
            "date": msg.date,
            "sender_id": msg.sender_id,
            "sender_name": sender.name if sender else "",
            "sender_username": sender.username if sender else None,
            "from_bot": bool(sender and sender.is_bot),
            "kind": kind,
            "text": body or "",
            "html": render_html(body or "", entities),
            "entities": entities,
            "caption": msg.caption,
            "reply_to": msg.reply_to,
            "edit_date": msg.edit_date,
            "edits": list(msg.edits),
            "buttons": buttons,
            "keyboard": msg.keyboard,
            "media": msg.media,
            "service": {k: v for k, v in msg.service.items()},
            "forward_origin": msg.forward_origin,
            "protected": msg.protected,
        }

    def op_history(self, chat_id: int, include_deleted: bool = False) -> JSON:
        """A chat as its members see it: every message in order, edits applied."""
        chat = self.state.chat(chat_id)
        messages = [
            self._view(m) | ({"deleted": True} if m.deleted else {})
            for m in chat.messages.values()
            if include_deleted or not m.deleted
        ]
        return {"version": self.state.version, "messages": messages}

    async def op_wait(
        self,
        version: int,
        timeout: float = 10.0,  # noqa: ASYNC109 (overall deadline)
    ) -> int:
        """Wait until anything changes after `version` (or timeout); return the new version."""
        if self.state.closing:
            raise ControlError("the sandbox has stopped")
        return await self.state.wait_change(int(version), min(float(timeout), 30.0))

    def op_chats(self) -> list[JSON]:
        """Every chat."""
        return [self._chat_info(c) for c in self.state.chats.values()]

    def op_users(self) -> list[JSON]:
        """Every person (and the bot)."""
        return [u.to_api() for u in self.state.users.values()]

    def op_bot(self) -> JSON:
        """The bot's identity, commands, webhook and pending update count."""
        state = self.state
        return {
            "user": state.bot.to_api(),
            "commands": state.commands,
            "webhook_url": state.webhook["url"],
            "pending_updates": len(state.updates),
            "allowed_updates": sorted(state.allowed_updates) if state.allowed_updates else None,
        }

    def op_chat_actions(self, chat_id: int | None = None) -> list[JSON]:
        """sendChatAction calls the bot made."""
        return [a for a in self.state.chat_actions if chat_id is None or a["chat_id"] == chat_id]

    # -- test knobs ----------------------------------------------------------------------

    def op_requests(self, method: str | None = None, chat_id: int | None = None) -> list[JSON]:
        """Logged Bot API requests, optionally for one method and/or chat."""
        return [
            r.to_json()
            for r in self.log.records
            if (method is None or r.method.lower() == method.lower())
            and (chat_id is None or r.chat_id == chat_id)
        ]

    def op_request_counts(self) -> list[JSON]:
        """Request counts per (chat, method, status)."""
        counts = Counter((r.chat_id, r.method, r.status) for r in self.log.records)
        return [
            {"chat_id": c, "method": m, "status": s, "count": n}
            for (c, m, s), n in sorted(counts.items(), key=lambda kv: str(kv[0]))
        ]

    def op_set_flood(self, **limits: Any) -> JSON:
        """Change flood limits (enabled, private_per_second, group_per_minute, …)."""
        try:
            return self.flood.configure(**limits).to_json()
        except TypeError as exc:
            raise ControlError(str(exc)) from None

    def op_inject_fault(self, kind: str, **options: Any) -> JSON:
        """Arm a fault: flood, server_error, timeout_after_accept or drop (see flood.Fault)."""
        try:
            return self.faults.add(kind, **options).to_json()
        except (TypeError, ValueError) as exc:
            raise ControlError(str(exc)) from None

    def op_faults(self) -> list[JSON]:
        """Faults that can still fire."""
        return [f.to_json() for f in self.faults.active()]

    def op_clear_faults(self) -> None:
        """Disarm every fault."""
        self.faults.clear()

    def op_reset(self) -> None:
        """Back to an empty world: no users, chats, updates, faults, log; default limits."""
        self.state.reset()
        self.faults.clear()
        self.log.clear()
        self.flood.configure(**self._initial_limits.to_json())

    def op_webhook_deliveries(self, update_id: int | None = None) -> list[JSON]:
        """Updates posted to the webhook (update, HTTP status, attempt), oldest first."""
        if self.webhook is None:
            return []
        return [
            d for d in self.webhook.deliveries if update_id is None or d["update_id"] == update_id
        ]

    async def op_redeliver(self, update_id: int) -> int:
        """Post an already delivered update again, as Telegram does when it did not
        see the answer; returns the webhook's HTTP status (0: no answer)."""
        if self.webhook is None or not self.state.webhook.get("url"):
            raise ControlError("no webhook is set")
        sent = [d for d in self.webhook.deliveries if d["update_id"] == int(update_id)]
        if not sent:
            raise ControlError(f"update {update_id} was never posted to the webhook")
        status: int = await self.webhook.post(sent[-1]["update"])
        return status

    def op_age_messages(self, chat_id: int, seconds: int) -> int:
        """Make every message of a chat `seconds` older (what Telegram does with time, e.g.
        the 48-hour limit of deleteMessage); returns how many messages aged."""
        chat = self.state.chat(chat_id)
        for msg in chat.messages.values():
            msg.date -= int(seconds)
        self.state.touch()
        return len(chat.messages)

    def op_inject_update(self, raw: str) -> int:
        """Queue raw JSON text as the bot's next update, sent byte for byte (malformed updates
        Telegram itself would not send); `__UPDATE_ID__` in it is replaced by the next update
        id. Returns the update's id in the queue."""
        if not isinstance(raw, str):
            raise ControlError("inject_update: raw must be a string of JSON text")
        return self.state.push_raw_update(raw)

    def op_version(self) -> int:
        """The current change counter (see `wait`)."""
        return self.state.version


MEDIA_KINDS = ("photo", "document", "video", "voice", "location", "poll")
