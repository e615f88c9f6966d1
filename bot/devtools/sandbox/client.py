"""`SandboxClient`: drive the sandbox as people would, read what they see, and wait for things.

Two transports, one interface: `sandbox.client` calls the controller in-process (tests and
the demo that start the sandbox themselves), `SandboxClient.connect(url)` talks HTTP to a
sandbox started with `daraja sandbox`. Arguments that name a user or chat accept an int or
anything with an `id` (the `SandboxUser`/`SandboxChat` the client returns).

    async with Sandbox() as sb:
        sb_client = sb.client
        alice = await sb_client.create_user("Alice", language_code="fr")
        group = await sb_client.create_group("PNH Kenscoff", members=[alice], bot="member")
        await sb_client.say(group, alice, "Bonjou")
        reply = await sb_client.wait_for_message(group, from_bot=True, contains="Bonjou")
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.devtools.sandbox.flood import RequestRecord

if TYPE_CHECKING:
    from bot.devtools.sandbox.control import Controller

T = TypeVar("T")


class SandboxError(Exception):
    """The sandbox refused a control request (unknown user, not a member…)."""


class SandboxTimeout(SandboxError, TimeoutError):
    """A `wait_for…` condition did not come true in time."""


class HasId(Protocol):
    """Anything with an integer id (users and chats returned by the client)."""

    @property
    def id(self) -> int:
        """The Telegram id."""
        ...


Ref = int | HasId


def _id(ref: Ref) -> int:
    return ref if isinstance(ref, int) else ref.id


@dataclass(frozen=True)
class SandboxUser:
    """A person created in the sandbox."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class SandboxChat:
    """A chat in the sandbox (members maps user id → status)."""

    id: int
    type: str
    title: str | None = None
    members: dict[int, str] = field(default_factory=dict)
    bot_status: str = "left"
    migrated_to: int | None = None
    migrated_from: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxChat:
        """Build from the control API's chat description."""
        return cls(
            id=data["id"], type=data["type"], title=data.get("title"),
            members={int(k): v for k, v in data.get("members", {}).items()},
            bot_status=data.get("bot_status", "left"), migrated_to=data.get("migrated_to"),
            migrated_from=data.get("migrated_from"),
        )  # fmt: skip


@dataclass(frozen=True)
class SandboxMessage:
    """One message as the chat's members see it (edits applied, entities rendered)."""

    chat_id: int
    message_id: int
    date: int
    sender_id: int | None
    sender_name: str
    sender_username: str | None
    from_bot: bool
    kind: str  # text, photo, document, video, voice, location, venue, poll, service
    text: str  # the text, or the caption of media
    html: str  # the same with its formatting as Telegram HTML
    entities: list[dict[str, Any]]
    caption: str | None
    reply_to: int | None
    edit_date: int | None
    edits: list[str]  # earlier versions, oldest first
    buttons: list[list[dict[str, Any]]]  # inline keyboard rows
    keyboard: dict[str, Any] | None  # reply keyboard / remove / force reply, if any
    media: dict[str, Any]
    service: dict[str, Any]
    forward_origin: dict[str, Any] | None
    protected: bool
    deleted: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxMessage:
        """Build from the control API's message view."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def edited(self) -> bool:
        """Whether the message was edited."""
        return self.edit_date is not None

    @property
    def button_labels(self) -> list[str]:
        """Labels of the inline buttons, row by row."""
        return [b["text"] for row in self.buttons for b in row]

    def summary(self) -> str:
        """One printable line: what a person would see, without formatting."""
        if self.kind == "service":
            key, value = next(iter(self.service.items()))
            if isinstance(value, list):
                value = ", ".join(u.get("first_name", "?") for u in value)
            elif isinstance(value, dict):
                value = value.get("first_name", "?")
            return f"[{key.replace('_', ' ')}: {value}]"
        body = self.text
        if self.kind in ("location", "venue"):
            loc = self.media["location"]
            place = f" {self.media['venue']['title']}" if self.kind == "venue" else ""
            body = f"[{self.kind}{place} {loc['latitude']}, {loc['longitude']}]"
        elif self.kind == "poll":
            body = f"[poll] {self.media['poll']['question']}"
        elif self.kind != "text":
            body = f"[{self.kind}] {body}".rstrip()
        if self.buttons:
            body += "  " + " ".join(f"[{label}]" for label in self.button_labels)
        return body + (" (edited)" if self.edited else "")


def max_in_window(records: Iterable[RequestRecord], window: float) -> int:
    """Most records within any `window` seconds (to check a bot's rate limiter)."""
    times = sorted(r.at for r in records)
    best = 0
    start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class _Transport(Protocol):
    async def call(self, op: str, args: dict[str, Any]) -> Any: ...

    async def close(self) -> None: ...


class _InProcess:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def call(self, op: str, args: dict[str, Any]) -> Any:
        from bot.devtools.sandbox.state import ControlError

        try:
            return await self.controller.dispatch(op, args)
        except ControlError as exc:
            raise SandboxError(str(exc)) from None

    async def close(self) -> None:
        return None


class _Http:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session: Any = None

    async def call(self, op: str, args: dict[str, Any]) -> Any:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(f"{self.url}/_sandbox/{op}", json=args) as response:
            body = await response.json()
        if not body.get("ok"):
            raise SandboxError(body.get("error", f"HTTP {response.status}"))
        return body["result"]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SandboxClient:
    """Control client: people act, chats are read, conditions are awaited, faults injected."""

    def __init__(self, transport: _Transport) -> None:
        self._transport = transport

    @classmethod
    def in_process(cls, controller: Controller) -> SandboxClient:
        """A client calling the controller directly (same event loop as the sandbox)."""
        return cls(_InProcess(controller))

    @classmethod
    def connect(cls, url: str) -> SandboxClient:
        """A client for a sandbox at `url` (its root, as printed by `daraja sandbox`)."""
        return cls(_Http(url))

    async def close(self) -> None:
        """Release the HTTP session, if any."""
        await self._transport.close()

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _call(self, op: str, **args: Any) -> Any:
        return await self._transport.call(op, {k: v for k, v in args.items() if v is not None})

    # -- people and chats ----------------------------------------------------------------

    async def create_user(
        self,
        first_name: str,
        *,
        id: int | None = None,
        username: str | None = None,
        language_code: str | None = None,
        last_name: str | None = None,
    ) -> SandboxUser:
        """Create a person."""
        data = await self._call(
            "create_user", first_name=first_name, id=id, username=username,
            language_code=language_code, last_name=last_name,
        )  # fmt: skip
        return SandboxUser(
            data["id"], data["first_name"], data.get("username"), data.get("language_code"),
            data.get("last_name"),
        )  # fmt: skip

    async def create_group(
        self,
        title: str,
        *,
        members: Sequence[Ref] = (),
        admins: Sequence[Ref] = (),
        owner: Ref | None = None,
        bot: str | None = None,
        supergroup: bool = False,
        id: int | None = None,
        username: str | None = None,
    ) -> SandboxChat:
        """Create a group (or supergroup); `bot="member"`/`"administrator"` adds the bot."""
        data = await self._call(
            "create_chat", type="supergroup" if supergroup else "group", title=title,
            members=[_id(m) for m in members], admins=[_id(a) for a in admins],
            owner=_id(owner) if owner is not None else None, bot=bot, id=id, username=username,
        )  # fmt: skip
        return SandboxChat.from_json(data)

    async def chat(self, chat: Ref) -> SandboxChat:
        """A chat's current description."""
        return SandboxChat.from_json(await self._call("chat", chat_id=_id(chat)))

    async def chats(self) -> list[SandboxChat]:
        """Every chat."""
        return [SandboxChat.from_json(c) for c in await self._call("chats")]

    async def add_bot(self, chat: Ref, *, by: Ref | None = None, admin: bool = False) -> None:
        """Add the bot to a group (or change it to admin/member if present)."""
        await self._call("add_bot", chat_id=_id(chat), by=_ref(by), admin=admin)

    async def remove_bot(self, chat: Ref, *, by: Ref | None = None) -> None:
        """Kick the bot from a group."""
        await self._call("remove_bot", chat_id=_id(chat), by=_ref(by))

    async def join(self, chat: Ref, user: Ref, *, by: Ref | None = None) -> SandboxMessage:
        """A person joins a group (or is added by `by`)."""
        return _msg(await self._call("join", chat_id=_id(chat), user_id=_id(user), by=_ref(by)))

    async def leave(self, chat: Ref, user: Ref) -> SandboxMessage:
        """A person leaves a group."""
        return _msg(await self._call("leave", chat_id=_id(chat), user_id=_id(user)))

    async def migrate(self, chat: Ref, *, by: Ref | None = None) -> SandboxChat:
        """Upgrade a group to a supergroup; returns the new supergroup."""
        return SandboxChat.from_json(await self._call("migrate", chat_id=_id(chat), by=_ref(by)))

    async def block_bot(self, user: Ref, blocked: bool = True) -> None:
        """A person blocks (or unblocks) the bot."""
        await self._call("block_bot", user_id=_id(user), blocked=blocked)

    # -- what people do ------------------------------------------------------------------

    async def say(
        self,
        chat: Ref,
        user: Ref,
        text: str | None = None,
        *,
        html: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
    ) -> SandboxMessage:
        """A person writes in a chat (`chat` = the user's id for their private chat)."""
        return await self._post(
            chat, user, "text", text=text, html=html, entities=entities, reply_to=reply_to
        )

    async def command(
        self, chat: Ref, user: Ref, command: str, args: str = "", *, reply_to: int | None = None
    ) -> SandboxMessage:
        """A person sends a bot command, e.g. command(chat, user, "lang", "fr")."""
        text = "/" + command.lstrip("/") + (f" {args}" if args else "")
        return await self.say(chat, user, text, reply_to=reply_to)

    async def start(self, user: Ref, args: str = "") -> SandboxMessage:
        """A person opens the bot's private chat with /start."""
        return await self.command(user, user, "start", args)

    async def edit(
        self,
        chat: Ref,
        user: Ref,
        message_id: int,
        text: str | None = None,
        *,
        html: str | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> SandboxMessage:
        """A person edits their message (the bot gets an edited_message)."""
        return _msg(
            await self._call(
                "edit", chat_id=_id(chat), user_id=_id(user), message_id=message_id, text=text,
                html=html, entities=entities,
            )
        )  # fmt: skip

    async def send_photo(
        self, chat: Ref, user: Ref, caption: str | None = None, *, reply_to: int | None = None
    ) -> SandboxMessage:
        """A person sends a photo, optionally with a caption."""
        return await self._post(chat, user, "photo", caption=caption, reply_to=reply_to)

    async def send_document(
        self,
        chat: Ref,
        user: Ref,
        file_name: str = "report.pdf",
        caption: str | None = None,
        *,
        reply_to: int | None = None,
    ) -> SandboxMessage:
        """A person sends a document."""
        return await self._post(
            chat, user, "document", file_name=file_name, caption=caption, reply_to=reply_to
        )

    async def send_video(self, chat: Ref, user: Ref, caption: str | None = None) -> SandboxMessage:
        """A person sends a video."""
        return await self._post(chat, user, "video", caption=caption)

    async def send_voice(
        self,
        chat: Ref,
        user: Ref,
        caption: str | None = None,
        *,
        data: bytes | None = None,
        duration: int | None = None,
    ) -> SandboxMessage:
        """A person sends a voice note (optionally real OGG/Opus bytes and its length)."""
        extra: dict[str, Any] = {}
        if data is not None:
            extra["data_b64"] = base64.b64encode(data).decode()
        if duration is not None:
            extra["duration"] = duration
        return await self._post(chat, user, "voice", caption=caption, **extra)

    async def send_location(
        self, chat: Ref, user: Ref, latitude: float, longitude: float
    ) -> SandboxMessage:
        """A person shares a location."""
        return await self._post(chat, user, "location", latitude=latitude, longitude=longitude)

    async def send_venue(
        self, chat: Ref, user: Ref, latitude: float, longitude: float, title: str, address: str
    ) -> SandboxMessage:
        """A person shares a venue."""
        return await self._post(
            chat, user, "venue", latitude=latitude, longitude=longitude, title=title,
            address=address,
        )  # fmt: skip

    async def send_poll(
        self, chat: Ref, user: Ref, question: str, options: Sequence[str]
    ) -> SandboxMessage:
        """A person starts a poll."""
        return await self._post(chat, user, "poll", question=question, options=list(options))

    async def forward(
        self,
        chat: Ref,
        user: Ref,
        text: str,
        *,
        from_user: Ref | None = None,
        from_name: str | None = None,
    ) -> SandboxMessage:
        """A person forwards a text from someone (a known user, or a hidden name)."""
        return await self._post(
            chat, user, "text", text=text, forward_from=_ref(from_user), forward_name=from_name
        )

    async def say_many(self, lines: list[tuple[Ref, Ref, str]]) -> list[SandboxMessage]:
        """Several people write, in order, in one request: (chat, user, text) each."""
        calls = [
            {
                "op": "post",
                "args": {"chat_id": _id(chat), "user_id": _id(user), "kind": "text", "text": text},
            }
            for chat, user, text in lines
        ]
        return [_msg(result) for result in await self._call("batch", calls=calls)]

    async def _post(self, chat: Ref, user: Ref, kind: str, **args: Any) -> SandboxMessage:
        return _msg(
            await self._call("post", chat_id=_id(chat), user_id=_id(user), kind=kind, **args)
        )

    async def press(
        self,
        chat: Ref,
        user: Ref,
        message_id: int,
        *,
        data: str | None = None,
        text: str | None = None,
    ) -> str:
        """A person presses an inline button (by callback data or label); returns the query id."""
        query_id: str = await self._call(
            "press", chat_id=_id(chat), user_id=_id(user), message_id=message_id, data=data,
            text=text,
        )  # fmt: skip
        return query_id

    async def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """The bot's answerCallbackQuery for a press (None while unanswered)."""
        answer: dict[str, Any] | None = await self._call("callback_answer", query_id=query_id)
        return answer

    async def age_messages(self, chat: Ref, seconds: int) -> int:
        """Make every message in a chat `seconds` older (e.g. past deleteMessage's 48 hours)."""
        count: int = await self._call("age_messages", chat_id=_id(chat), seconds=seconds)
        return count

    # -- what people see -----------------------------------------------------------------

    async def history(self, chat: Ref, *, include_deleted: bool = False) -> list[SandboxMessage]:
        """A chat as its members see it, oldest first."""
        data = await self._call("history", chat_id=_id(chat), include_deleted=include_deleted)
        return [SandboxMessage.from_json(m) for m in data["messages"]]

    async def bot_messages(self, chat: Ref) -> list[SandboxMessage]:
        """The bot's messages in a chat, oldest first."""
        return [m for m in await self.history(chat) if m.from_bot]

    async def wait_until(
        self,
        check: Callable[[], Awaitable[T | None]],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (overall deadline)
        what: str = "condition",
    ) -> T:
        """Re-run `check` on every change in the sandbox until it returns non-None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            version: int = await self._call("version")
            result = await check()
            if result is not None and result is not False:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SandboxTimeout(f"{what} not met within {timeout:g} s")
            await self._call("wait", version=version, timeout=remaining)

    async def wait_for(
        self,
        chat: Ref,
        predicate: Callable[[list[SandboxMessage]], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (overall deadline)
    ) -> list[SandboxMessage]:
        """Wait until `predicate(history)` holds for a chat; return that history."""

        async def check() -> list[SandboxMessage] | None:
            messages = await self.history(chat)
            return messages if predicate(messages) else None

        try:
            return await self.wait_until(check, timeout=timeout, what=f"chat {_id(chat)}")
        except SandboxTimeout:
            tail = "\n".join(
                f"  {m.sender_name}: {m.summary()}" for m in (await self.history(chat))[-5:]
            )
            raise SandboxTimeout(
                f"condition on chat {_id(chat)} not met within {timeout:g} s; last messages:\n"
                f"{tail or '  (none)'}"
            ) from None

    async def wait_for_message(
        self,
        chat: Ref,
        predicate: Callable[[SandboxMessage], bool] | None = None,
        *,
        from_bot: bool | None = None,
        contains: str | None = None,
        after: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109 (overall deadline)
    ) -> SandboxMessage:
        """Wait for the first message (id > `after`) matching all the given conditions."""

        def matches(m: SandboxMessage) -> bool:
            return (
                m.message_id > after
                and (from_bot is None or m.from_bot == from_bot)
                and (contains is None or contains in m.text)
                and (predicate is None or predicate(m))
            )

        history = await self.wait_for(chat, lambda ms: any(map(matches, ms)), timeout=timeout)
        return next(m for m in history if matches(m))

    async def wait_for_answer(
        self,
        query_id: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (overall deadline)
    ) -> dict[str, Any]:
        """Wait for the bot's answerCallbackQuery to a press."""

        async def check() -> dict[str, Any] | None:
            return await self.callback_answer(query_id)

        return await self.wait_until(check, timeout=timeout, what=f"answer to query {query_id}")

    async def bot_info(self) -> dict[str, Any]:
        """The bot's identity, commands (by scope|language), webhook and pending updates."""
        info: dict[str, Any] = await self._call("bot")
        return info

    async def chat_actions(self, chat: Ref | None = None) -> list[dict[str, Any]]:
        """sendChatAction calls the bot made."""
        actions: list[dict[str, Any]] = await self._call("chat_actions", chat_id=_ref(chat))
        return actions

    # -- test knobs ----------------------------------------------------------------------

    async def requests(
        self, method: str | None = None, chat: Ref | None = None
    ) -> list[RequestRecord]:
        """Logged Bot API requests (time, method, chat, status, outcome)."""
        data = await self._call("requests", method=method, chat_id=_ref(chat))
        return [RequestRecord(**r) for r in data]

    async def request_counts(self) -> list[dict[str, Any]]:
        """Request counts per chat, method and status."""
        counts: list[dict[str, Any]] = await self._call("request_counts")
        return counts

    async def peak_sends(self, chat: Ref, window: float) -> int:
        """Most successful rate-limited sends to a chat within any `window` seconds."""
        from bot.devtools.sandbox.flood import LIMITED_METHODS

        records = [
            r
            for r in await self.requests(chat=chat)
            if r.status == 200 and r.method in LIMITED_METHODS
        ]
        return max_in_window(records, window)

    async def set_flood(self, **limits: Any) -> dict[str, Any]:
        """Change flood limits: enabled, private_per_second, private_burst, group_per_minute,
        group_burst, global_per_second, global_burst."""
        result: dict[str, Any] = await self._transport.call("set_flood", limits)
        return result

    async def disable_flood(self) -> None:
        """Turn flood control off (burst tests)."""
        await self.set_flood(enabled=False)

    async def inject_fault(
        self,
        kind: str,
        *,
        method: str | None = None,
        chat: Ref | None = None,
        count: int | None = 1,
        probability: float | None = None,
        seed: int | None = None,
        retry_after: int = 5,
        status: int = 500,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """Arm a fault for matching calls: "flood" (429 retry_after), "server_error" (status),
        "timeout_after_accept" (stored, then the response is late by `delay` s or, with no
        delay, the connection drops), "drop" (connection closed before processing).
        `count=None` with a `probability` (and `seed`) fires at random indefinitely."""
        args: dict[str, Any] = {
            "method": method, "chat_id": _ref(chat), "count": count, "probability": probability,
            "seed": seed, "retry_after": retry_after, "status": status, "delay": delay,
        }  # fmt: skip
        result: dict[str, Any] = await self._transport.call("inject_fault", {"kind": kind, **args})
        return result

    async def clear_faults(self) -> None:
        """Disarm every fault."""
        await self._call("clear_faults")

    async def webhook_deliveries(self, update_id: int | None = None) -> list[dict[str, Any]]:
        """Updates the sandbox posted to the bot's webhook (with status, attempt)."""
        result: list[dict[str, Any]] = await self._call("webhook_deliveries", update_id=update_id)
        return result

    async def redeliver(self, update_id: int) -> int:
        """Post an update to the webhook again (a Telegram retry); the HTTP status."""
        status: int = await self._call("redeliver", update_id=update_id)
        return status

    async def inject_updates(self, raws: list[str]) -> list[int]:
        """Queue raw JSON texts as the bot's next updates, in one request (see the control
        operation `inject_update`); returns their update ids."""
        calls = [{"op": "inject_update", "args": {"raw": raw}} for raw in raws]
        result: list[int] = await self._call("batch", calls=calls)
        return result

    async def reset(self) -> None:
        """Back to an empty world (users, chats, updates, faults, log, limits)."""
        await self._call("reset")


def _ref(ref: Ref | None) -> int | None:
    return None if ref is None else _id(ref)


def _msg(data: dict[str, Any]) -> SandboxMessage:
    return SandboxMessage.from_json(data)
