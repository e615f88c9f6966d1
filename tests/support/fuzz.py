"""A seeded corpus of malformed Telegram updates, each of a kind that once stopped the bot.

Every case is raw JSON text with the placeholder `__UPDATE_ID__` for its id (the sandbox's
`inject_update` and `with_id` fill it in), the kind, and the stage at which the inbox must
mark it failed (`unreadable`: cannot be decoded or stored as is; `unroutable`: no usable chat
id; `unparseable`: python-telegram-bot cannot build the Update) or None when it cannot be
stored at all (no usable update_id). Same seed, same corpus.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = "__UPDATE_ID__"
# Kinds the Bot API sandbox can carry in polling mode (a getUpdates offset past 2**63 would
# confirm every later update too, so out-of-range ids are covered by the inbox and webhook).
POLLING_KINDS = (
    "chat_without_type",
    "sticker_missing_fields",
    "chat_member_missing_fields",
    "lone_surrogate",
    "chat_id_not_integer",
    "deep_json",
    "wrong_field_types",
)
ALL_KINDS = (*POLLING_KINDS, "update_id_out_of_range")
STAGE = {
    "chat_without_type": "unparseable",
    "sticker_missing_fields": "unparseable",
    "chat_member_missing_fields": "unparseable",
    "lone_surrogate": "unreadable",
    "chat_id_not_integer": "unroutable",
    "deep_json": "unreadable",
    "wrong_field_types": "unparseable",
    "update_id_out_of_range": None,
}


@dataclass(frozen=True)
class Case:
    """One malformed update: its kind, raw JSON text, and the stage it must fail at."""

    kind: str
    raw: str
    stage: str | None

    def with_id(self, update_id: int) -> str:
        """The raw text with its update id filled in."""
        return self.raw.replace(PLACEHOLDER, str(update_id))


def corpus(
    seed: int,
    n: int,
    *,
    kinds: tuple[str, ...] = ALL_KINDS,
    chat_ids: tuple[int, ...] = (),
    deepest: int = 100_000,
) -> list[Case]:
    """`n` cases cycling through `kinds` in a seeded order; chats are random unknown groups
    and private chats, or one of `chat_ids` (enrolled chats: malformed there too). The first
    deep case is `deepest` levels deep, later ones 1,100-5,000 (past the decoder's limit)."""
    rng = random.Random(seed)
    cases = []
    deep_done = False
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
        depth = 0
        if kind == "deep_json":
            depth = deepest if not deep_done else rng.randint(1_100, 5_000)
            deep_done = True
        cases.append(Case(kind, _make(rng, kind, _chat_id(rng, chat_ids), depth), STAGE[kind]))
    return cases


def _chat_id(rng: random.Random, chat_ids: tuple[int, ...]) -> int:
    roll = rng.random()
    if chat_ids and roll < 0.3:
        return rng.choice(chat_ids)
    if roll < 0.65:
        return -(1_000_000_000_000 + rng.randrange(10**9))
    return rng.randrange(10**8, 10**10)


def _user(rng: random.Random) -> dict[str, Any]:
    return {"id": rng.randrange(10**8, 10**10), "is_bot": False, "first_name": "Fuzz"}


def _message(rng: random.Random, chat_id: int) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": "supergroup" if chat_id < 0 else "private"}
    if chat_id < 0:
        chat["title"] = "Fuzz group"
    else:
        chat["first_name"] = "Fuzz"
    return {
        "message_id": rng.randrange(1, 10**6),
        "date": 1_700_000_000 + rng.randrange(10**6),
        "chat": chat,
        "from": _user(rng),
        "text": rng.choice(["Patrol at 14:30", "Checkpoint Kenscoff", "/status", "OK"]),
    }


def _text(update: dict[str, Any]) -> str:
    # ensure_ascii: a lone surrogate becomes a \u escape (the bytes Telegram would send).
    return json.dumps(update).replace(f'"{PLACEHOLDER}"', PLACEHOLDER)


def _make(rng: random.Random, kind: str, chat_id: int, depth: int) -> str:
    msg = _message(rng, chat_id)
    update: dict[str, Any] = {"update_id": PLACEHOLDER, "message": msg}
    if kind == "chat_without_type":
        del msg["chat"]["type"]
    elif kind == "sticker_missing_fields":
        del msg["text"]
        sticker: dict[str, Any] = {
            "file_id": "CAACAgIAAxk",
            "file_unique_id": "AgAD",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
        }
        for key in rng.sample(sorted(sticker), rng.randint(1, 4)):
            del sticker[key]
        msg["sticker"] = sticker
    elif kind == "chat_member_missing_fields":
        del update["message"]
        user = _user(rng)
        member = {
            "chat": msg["chat"],
            "from": user,
            "date": msg["date"],
            "old_chat_member": {"user": dict(user), "status": "left"},
            "new_chat_member": {"user": dict(user), "status": "member"},
        }
        side = rng.choice(["old_chat_member", "new_chat_member"])
        missing = rng.choice(["status", "user.id", "user.is_bot", "user.first_name"])
        if missing.startswith("user."):
            del member[side]["user"][missing[5:]]
        else:
            del member[side][missing]
        update[rng.choice(["chat_member", "my_chat_member"])] = member
    elif kind == "lone_surrogate":
        lone = chr(rng.choice([rng.randrange(0xD800, 0xDC00), rng.randrange(0xDC00, 0xE000)]))
        text = msg["text"]
        cut = rng.randrange(len(text) + 1)
        msg["text"] = text[:cut] + lone + text[cut:]
    elif kind == "chat_id_not_integer":
        msg["chat"]["id"] = rng.choice([{}, [], "abc", "-100123", 1.5, True, None])
    elif kind == "deep_json":
        field = rng.choice(["reply_markup", "entities", "text"])
        head = _text(update)[:-2]  # without the closing "}}" of message and update
        nest = rng.choice("[{")
        inner = "[" * depth + "]" * depth if nest == "[" else '{"a":' * depth + "1" + "}" * depth
        return f'{head}, "{field}": {inner}}}}}'
    elif kind == "wrong_field_types":
        variant = rng.randrange(5)
        if variant == 0:
            msg["date"] = "yesterday"
        elif variant == 1:
            del msg["from"]["id"]
        elif variant == 2:
            msg["entities"] = [{"type": "bold"}]
        elif variant == 3:
            update["message"] = rng.choice([[], "hello", 42])
        else:
            del update["message"]
            update["callback_query"] = {"id": str(rng.randrange(10**9)), "from": _user(rng)}
    elif kind == "update_id_out_of_range":
        return _text(update).replace(PLACEHOLDER, str(2**63 + rng.randrange(2**62)), 1)
    return _text(update)
