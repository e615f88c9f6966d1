"""Telegram's HTML parse mode: markup → (text, entities) and back, offsets in UTF-16 code units.

The parser follows TDLib's `parse_html` (what the Bot API server runs): the same supported tags,
the same entity decoding (`&lt; &gt; &amp; &quot;` and numeric, semicolon optional, unknown
entities kept literally) and the same error texts with UTF-8 byte offsets, so a bot that sends
malformed HTML gets exactly the 400 Telegram would give it.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import urlsplit

Entity = dict[str, Any]

_SPACE = " \t\r\n\f\v\0"
_SUPPORTED = {
    "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji",
    "span", "pre", "code", "blockquote",
}  # fmt: skip
_SIMPLE = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler",
}  # fmt: skip
# TDLib's ordering of entities that start at the same offset with the same length.
_PRIORITY = {
    "blockquote": 0, "expandable_blockquote": 0, "pre": 11, "code": 20, "text_link": 49,
    "text_mention": 49, "bold": 90, "italic": 91, "underline": 92, "strikethrough": 93,
    "spoiler": 94, "custom_emoji": 99,
}  # fmt: skip
# Entities that may not contain others (Telegram drops what is nested inside them).
_OPAQUE = {"pre", "code"}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class HtmlError(ValueError):
    """Malformed markup; the message is Telegram's text after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _decode_entity(source: str, pos: int) -> tuple[str, int] | None:
    """Decode one character reference at `pos` ('&'); None if it is not one (kept literally)."""
    end = pos + 1
    n = len(source)
    if end < n and source[end] == "#":
        end += 1
        value = 0
        if end < n and source[end] == "x":
            end += 1
            while end < n and source[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(source[end], 16)
                end += 1
                if value >= 0x10FFFF:
                    return None
        else:
            while end < n and source[end].isascii() and source[end].isdigit():
                value = value * 10 + int(source[end])
                end += 1
                if value >= 0x10FFFF:
                    return None
        if value == 0 or 0xD800 <= value <= 0xDFFF:
            return None
        char = chr(value)
    else:
        while end < n and source[end].isascii() and source[end].isalpha():
            end += 1
        named = _NAMED.get(source[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and source[end] == ";":
        end += 1
    return char, end


def decode_entities(value: str) -> str:
    """Decode character references in an attribute value."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&" and (decoded := _decode_entity(value, i)) is not None:
            out.append(decoded[0])
            i = decoded[1]
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _check_url(url: str) -> str | None:
    """Normalise a link the way Telegram does (scheme added, bare host gets '/'); None if bad."""
    url = url.strip()
    if not url or any(c in url for c in ' \n\t<>"'):
        return None
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url):
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        if "." not in host.strip(".") and host != "localhost":
            return None
        if not parts.path:
            url = parts._replace(path="/").geturl()
    return url


class _Open:
    __slots__ = ("arg", "expandable", "start", "tag")

    def __init__(self, tag: str, arg: str, start: int, expandable: bool) -> None:
        self.tag = tag
        self.arg = arg
        self.start = start
        self.expandable = expandable


def parse_html(
    source: str, users: dict[int, dict[str, Any]] | None = None
) -> tuple[str, list[Entity]]:
    """Parse Telegram HTML into plain text and entities (not yet trimmed)."""
    out: list[str] = []
    pos16 = 0  # UTF-16 length of the text produced so far
    stack: list[_Open] = []
    entities: list[Entity] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "&":
            decoded = _decode_entity(source, i)
            if decoded is not None:
                out.append(decoded[0])
                pos16 += utf16_len(decoded[0])
                i = decoded[1]
                continue
        if ch != "<":
            out.append(ch)
            pos16 += 2 if ord(ch) > 0xFFFF else 1
            i += 1
            continue
        begin = _byte_offset(source, i)
        i += 1
        if i < n and source[i] == "/":
            i = _close_tag(source, i + 1, begin, stack, entities, pos16, "".join(out), users)
            continue
        i = _open_tag(source, i, begin, stack, pos16)
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return "".join(out), entities


def _open_tag(source: str, i: int, begin: int, stack: list[_Open], pos16: int) -> int:
    n = len(source)
    name_begin = i
    while i < n and source[i] not in _SPACE and source[i] != ">":
        i += 1
    if i >= n:
        raise HtmlError(f"Unclosed start tag at byte offset {begin}")
    tag = source[name_begin:i].lower()
    if tag not in _SUPPORTED:
        raise HtmlError(f'Unsupported start tag "{tag}" at byte offset {begin}')
    arg = ""
    expandable = False
    while source[i] != ">":
        while i < n and source[i] in _SPACE:
            i += 1
        if i >= n:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if source[i] == ">":
            break
        attr_begin = i
        while i < n and source[i] not in _SPACE and source[i] not in "=>":
            i += 1
        attr = source[attr_begin:i].lower()
        if not attr:
            raise HtmlError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while i < n and source[i] in _SPACE:
            i += 1
        if i >= n:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if source[i] != "=":
            if tag == "blockquote" and attr == "expandable":
                expandable = True
                continue
            raise HtmlError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {begin}"
            )
        i += 1
        while i < n and source[i] in _SPACE:
            i += 1
        if i >= n:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if source[i] not in "'\"":
            token_begin = i
            while i < n and ((source[i].isascii() and source[i].isalnum()) or source[i] in ".-"):
                i += 1
            value = source[token_begin:i].lower()
            if i >= n or (source[i] not in _SPACE and source[i] != ">"):
                offset = _byte_offset(source, token_begin)
                raise HtmlError(f"Unexpected end of name token at byte offset {offset}")
        else:
            quote = source[i]
            i += 1
            end = source.find(quote, i)
            if end < 0:
                raise HtmlError(f"Unclosed start tag at byte offset {begin}")
            value = decode_entities(source[i:end])
            i = end + 1
            if i >= n:
                raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if tag == "a" and attr == "href":
            arg = value
        elif tag == "code" and attr == "class" and value.startswith("language-"):
            arg = value[len("language-") :]
        elif tag == "span" and attr == "class" and value.startswith("tg-"):
            arg = value[len("tg-") :]
        elif tag == "tg-emoji" and attr == "emoji-id":
            arg = value
    if tag == "span" and arg != "spoiler":
        raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    stack.append(_Open(tag, arg, pos16, expandable))
    return i + 1


def _close_tag(
    source: str,
    i: int,
    begin: int,
    stack: list[_Open],
    entities: list[Entity],
    pos16: int,
    produced: str,
    users: dict[int, dict[str, Any]] | None,
) -> int:
    n = len(source)
    if not stack:
        raise HtmlError(f"Unexpected end tag at byte offset {begin}")
    name_begin = i
    while i < n and source[i] not in _SPACE and source[i] != ">":
        i += 1
    if i >= n:
        raise HtmlError(f"Unclosed end tag at byte offset {begin}")
    name = source[name_begin:i].lower()
    while i < n and source[i] in _SPACE:
        i += 1
    if i >= n or source[i] != ">":
        raise HtmlError(f"Unclosed end tag at byte offset {begin}")
    top = stack.pop()
    if name and name != top.tag:
        raise HtmlError(
            f'Unmatched end tag at byte offset {begin}, expected "</{top.tag}>", found "</{name}>"'
        )
    length = pos16 - top.start
    if length > 0:
        entity = _make_entity(top, length, produced, users)
        if entity is not None:
            if (
                top.tag == "pre"
                and entities
                and entities[-1]["type"] == "code"
                and (entities[-1]["offset"] == top.start and entities[-1]["length"] == length)
            ):
                # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
                language = entities.pop().get("language")
                if language:
                    entity["language"] = language
            entities.append(entity)
    return i + 1


def _make_entity(
    top: _Open, length: int, produced: str, users: dict[int, dict[str, Any]] | None
) -> Entity | None:
    entity: Entity = {"offset": top.start, "length": length}
    if top.tag in _SIMPLE:
        entity["type"] = _SIMPLE[top.tag]
    elif top.tag == "code":
        entity["type"] = "code"
        if top.arg:
            entity["language"] = top.arg
    elif top.tag == "pre":
        entity["type"] = "pre"
    elif top.tag == "blockquote":
        entity["type"] = "expandable_blockquote" if top.expandable else "blockquote"
    elif top.tag == "tg-emoji":
        if not top.arg.isdigit():
            raise HtmlError("Invalid custom emoji identifier specified")
        entity["type"] = "custom_emoji"
        entity["custom_emoji_id"] = top.arg
    else:  # a
        units = produced.encode("utf-16-le")
        url = top.arg or units[top.start * 2 :].decode("utf-16-le")
        mention = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if mention:
            user = (users or {}).get(int(mention.group(1)))
            if user is None:
                return None
            entity["type"] = "text_mention"
            entity["user"] = user
        else:
            checked = _check_url(url)
            if checked is None:
                return None
            entity["type"] = "text_link"
            entity["url"] = checked
    return entity


_AUTO = re.compile(
    r"(?P<bot_command>(?<![\w/])/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/]))"
    r"|(?P<url>\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])"
    r"|(?P<mention>(?<![\w@])@[a-zA-Z0-9_]{3,32}(?!\w))"
    r"|(?P<hashtag>(?<![\w#])#\w*[^\W\d]\w*)"
)


def find_auto_entities(text: str) -> list[Entity]:
    """Entities Telegram detects by itself: bot commands, URLs, @mentions and #hashtags."""
    found: list[Entity] = []
    for match in _AUTO.finditer(text):
        kind = match.lastgroup or ""
        found.append(
            {
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
                "type": kind,
            }
        )
    return found


def normalize(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Trim surrounding whitespace, drop empty and disallowed nested entities, add auto ones."""
    stripped_left = text.lstrip(_SPACE)
    shift = utf16_len(text) - utf16_len(stripped_left)
    result = stripped_left.rstrip(_SPACE)
    total = utf16_len(result)
    kept: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    kept.sort(key=lambda e: (e["offset"], -e["length"], _PRIORITY.get(e["type"], 50)))
    final: list[Entity] = []
    for entity in kept:
        if any(_contains(outer, entity) for outer in final if outer["type"] in _OPAQUE):
            continue  # pre and code cannot contain other entities
        if "blockquote" in entity["type"] and any(
            "blockquote" in outer["type"] and _overlaps(outer, entity) for outer in final
        ):
            continue  # blockquotes cannot be nested
        final.append(entity)
    # Detected entities never overlap code, links or each other; formatting may wrap them.
    exclusive = {"pre", "code", "text_link", "text_mention", "custom_emoji"}
    for auto in find_auto_entities(result):
        if not any(_overlaps(auto, e) and e["type"] in exclusive for e in final):
            final.append(auto)
    final.sort(key=lambda e: (e["offset"], -e["length"], _PRIORITY.get(e["type"], 50)))
    return result, final


def _contains(outer: Entity, inner: Entity) -> bool:
    return bool(
        outer["offset"] <= inner["offset"]
        and inner["offset"] + inner["length"] <= outer["offset"] + outer["length"]
    )


def _overlaps(a: Entity, b: Entity) -> bool:
    return bool(
        a["offset"] < b["offset"] + b["length"] and b["offset"] < a["offset"] + a["length"]
    )


def escape(text: str) -> str:
    """Escape text for Telegram HTML (the three characters the parser treats specially).

    The sandbox stands in for Telegram, so it keeps its own rules rather than borrowing the
    bot's `bot.domain.escape_html`: a bug in the bot's escaping must show up against it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tags(entity: Entity) -> tuple[str, str] | None:
    kind = entity["type"]
    simple = {
        "bold": "b", "italic": "i", "underline": "u", "strikethrough": "s",
        "spoiler": "tg-spoiler", "code": "code", "blockquote": "blockquote",
    }  # fmt: skip
    if kind in simple:
        return f"<{simple[kind]}>", f"</{simple[kind]}>"
    if kind == "pre":
        if entity.get("language"):
            lang = escape(entity["language"]).replace('"', "&quot;")
            return f'<pre><code class="language-{lang}">', "</code></pre>"
        return "<pre>", "</pre>"
    if kind == "expandable_blockquote":
        return "<blockquote expandable>", "</blockquote>"
    if kind == "text_link":
        return f'<a href="{escape(entity["url"]).replace(chr(34), "&quot;")}">', "</a>"
    if kind == "text_mention":
        return f'<a href="tg://user?id={entity["user"]["id"]}">', "</a>"
    if kind == "custom_emoji":
        return f'<tg-emoji emoji-id="{entity["custom_emoji_id"]}">', "</tg-emoji>"
    return None  # url, mention, hashtag, bot_command…: plain text


def render_html(text: str, entities: list[Entity]) -> str:
    """Render text and entities back to Telegram HTML (overlaps are split into nested tags)."""
    units = text.encode("utf-16-le")
    formatted = [(e, tags) for e in entities if (tags := _tags(e)) is not None and e["length"] > 0]
    bounds = sorted(
        {0, len(units) // 2}
        | {e["offset"] for e, _ in formatted}
        | {e["offset"] + e["length"] for e, _ in formatted}
    )
    out: list[str] = []
    open_: list[tuple[Entity, tuple[str, str]]] = []
    for left, right in itertools.pairwise(bounds):
        active = [
            (e, t)
            for e, t in formatted
            if e["offset"] <= left and e["offset"] + e["length"] >= right
        ]
        # Keep the longest common prefix of open tags, close the rest, open what is missing.
        keep = 0
        while keep < len(open_) and keep < len(active) and open_[keep][0] is active[keep][0]:
            keep += 1
        for _, tags in reversed(open_[keep:]):
            out.append(tags[1])
        for _, tags in active[keep:]:
            out.append(tags[0])
        open_ = active
        out.append(escape(units[left * 2 : right * 2].decode("utf-16-le", "replace")))
    for _, tags in reversed(open_):
        out.append(tags[1])
    return "".join(out)
