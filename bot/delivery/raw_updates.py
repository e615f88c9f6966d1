"""Raw updates as they arrive, before python-telegram-bot sees them: what can be stored, and how.

Every update is committed to the inbox as raw JSON keyed by its `update_id`, then parsed on its
own, so one update nobody can parse (a chat without `type`, JSON nested 100,000 deep, a lone
UTF-16 surrogate) costs that update and nothing else:

    raw = triage(value)          # a decoded JSON value, its text, or a webhook body
    if isinstance(raw, Rejected):    # no usable update_id: cannot even be keyed
        ...
    elif raw.error is not None:      # stored as `failed` with the reason, never dispatched
        ...
    else:                            # stored as `new`, then dispatched
        ...

A `getUpdates` answer that the standard JSON decoder cannot read as a whole (one element too
deeply nested) is split into its elements (`updates_response`), so the rest of the batch is
read normally.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# The inbox keys updates by a signed 64-bit column (Telegram's ids are far below this).
MAX_UPDATE_ID = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
# JSON tokens that matter for finding structure: strings (skipped whole), brackets, commas.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')
_NUMBER = re.compile(r"\s*:\s*(-?\d+)(?=\s*[,}])")


@dataclass(frozen=True)
class RawUpdate:
    """An update that can be stored: its id, the JSON text kept, and why it fails (if it does)."""

    update_id: int
    payload: str
    data: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class Rejected:
    """Something that cannot be stored as an update (no usable `update_id`), and why."""

    reason: str


def triage(value: object) -> RawUpdate | Rejected:
    """Classify one incoming update (decoded JSON, JSON text, or raw bytes)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return Rejected("body is not UTF-8")
    if isinstance(value, str):
        return _from_text(value)
    return _from_data(value)


def _from_text(text: str) -> RawUpdate | Rejected:
    try:
        data = json.loads(text)
    except RecursionError:
        update_id = top_level_update_id(text)
        if update_id is None:
            return Rejected("JSON nested too deeply, no readable update_id")
        return RawUpdate(update_id, text, None, "unreadable: JSON nested too deeply")
    except ValueError:
        return Rejected("not JSON")
    return _from_data(data)


def _from_data(data: object) -> RawUpdate | Rejected:
    if not isinstance(data, dict):
        return Rejected("not a JSON object")
    update_id = data.get("update_id")
    # bool is an int subclass: `true` is not an update id.
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return Rejected("no integer update_id")
    if not 0 <= update_id <= MAX_UPDATE_ID:
        return Rejected("update_id out of range")
    try:
        payload = json.dumps(data, ensure_ascii=False)
    except (RecursionError, ValueError):
        return RawUpdate(update_id, json.dumps({"update_id": update_id}), None,
                         "unreadable: JSON nested too deeply")  # fmt: skip
    if _SURROGATE.search(payload) is not None:
        # json.loads joins valid pairs, so any surrogate left is a lone one: no UTF-8 for it.
        # Kept as \u escapes (ASCII), so the row can be written and read back as received.
        return RawUpdate(update_id, json.dumps(data), None,
                         "unreadable: lone UTF-16 surrogate in a string")  # fmt: skip
    return RawUpdate(update_id, payload, data)


def top_level_update_id(text: str) -> int | None:
    """The `update_id` member of a JSON object's top level, found without decoding it."""
    depth = 0
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if piece in "{[":
            depth += 1
        elif piece in "}]":
            depth -= 1
        elif depth == 1 and piece == '"update_id"':
            number = _NUMBER.match(text, match.end())
            if number is not None:
                return int(number.group(1))
    return None


def updates_response(text: str) -> dict[str, Any]:
    """A getUpdates answer; elements too deep to decode are left as their JSON text."""
    try:
        data: dict[str, Any] = json.loads(text)
        return data
    except RecursionError:
        pass
    elements: list[Any] = []
    depth, start, in_result = 0, -1, False
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if depth == 1 and piece == '"result"':
            in_result = True
        elif piece in "{[":
            depth += 1
            if in_result and depth == 3:
                start = match.start()
        elif piece in "}]":
            depth -= 1
            if in_result and depth == 2 and start >= 0:
                elements.append(_element(text[start : match.end()]))
                start = -1
            elif in_result and depth == 1:
                in_result = False
    ok = re.match(r'\s*\{\s*"ok"\s*:\s*true', text) is not None
    return {"ok": ok, "result": elements}


def _element(text: str) -> Any:
    try:
        return json.loads(text)
    except (RecursionError, ValueError):
        return text
