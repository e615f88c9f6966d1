"""How a relayed copy looks in a target chat, within Telegram's limits.

A copy is: a header (author, unit, side), the translation (one block per language for mixed
groups), a warning line when the engine flagged the translation, and the original in an
expandable blockquote. All user text is HTML-escaped; the original keeps its formatting when
Telegram gave it to us as HTML. Long copies are split below 4,096 characters (Telegram counts
UTF-16 code units after entity parsing) at sentence or line boundaries, and every part of a
split copy starts with the header and its position, "(2/5)"; captions stay within 1,024 with
the overflow sent as following text messages.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser

from bot.domain import escape_html

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# Margin for what Telegram counts differently from us (entities at split points, newlines).
_SAFETY = 96
_SENTENCE_END = re.compile(r"(?<=[.!?…。])\s+|\n+")


@dataclass(frozen=True)
class Mark:
    """A formatted fragment of the original (`<b>14:30</b>`): its text and the tags around it."""

    text: str
    opening: str  # e.g. '<b><code>'
    closing: str  # e.g. '</code></b>'


@dataclass(frozen=True)
class Block:
    """Translated text for one language of the target chat. `marks` are the original's
    formatted fragments: each is re-applied where its text appears unchanged in `text`
    (numbers, times, callsigns, codes and links survive translation as protected spans)."""

    language: str
    text: str
    is_original: bool = False
    marks: tuple[Mark, ...] = ()


# Inline formatting Telegram's HTML allows that can wrap a fragment of a translated line.
_INLINE_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "a", "tg-spoiler"}
)


class _MarkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # (name, opening tag as re-emitted, closing tag); empty tags for ignored elements.
        self.stack: list[tuple[str, str, str]] = []
        self.blocked = 0  # inside tags whose content is not inline text (pre, blockquote)
        self.marks: list[Mark] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in _INLINE_TAGS:
            if tag == "a":
                href = values.get("href") or ""
                if not href:
                    self.stack.append((tag, "", ""))
                    return
                self.stack.append((tag, f'<a href="{html.escape(href, quote=True)}">', "</a>"))
            else:
                self.stack.append((tag, f"<{tag}>", f"</{tag}>"))
        elif tag == "span" and values.get("class") == "tg-spoiler":
            self.stack.append((tag, "<tg-spoiler>", "</tg-spoiler>"))
        elif tag in ("pre", "blockquote"):
            self.blocked += 1
        elif tag == "span":
            self.stack.append((tag, "", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "blockquote"):
            self.blocked = max(0, self.blocked - 1)
            return
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index]
                return

    def handle_data(self, data: str) -> None:
        tags = [(opening, closing) for _name, opening, closing in self.stack if opening]
        text = data.strip()
        if not tags or self.blocked or len(text) < 2:
            return
        opening = "".join(o for o, _ in tags)
        closing = "".join(c for _, c in reversed(tags))
        self.marks.append(Mark(text, opening, closing))


def marks_from_html(original_html: str | None) -> tuple[Mark, ...]:
    """The formatted fragments of an original given as Telegram HTML."""
    if not original_html:
        return ()
    parser = _MarkParser()
    try:
        parser.feed(original_html)
        parser.close()
    except Exception:  # noqa: BLE001 - malformed HTML: no formatting rather than no copy
        return ()
    return tuple(parser.marks)


def render_marked(text: str, marks: Sequence[Mark], used: set[int] | None = None) -> str:
    """Escape `text`, wrapping the first free occurrence of each mark's text in its tags
    (longest first, non-overlapping; a mark is used once across the calls sharing `used`)."""
    used = set() if used is None else used
    spans: list[tuple[int, int, Mark]] = []
    # Longer fragments first: `K-12 B` in code is placed before a bold `K-12` claims its start.
    order = sorted(range(len(marks)), key=lambda i: -len(marks[i].text))
    for index in order:
        mark = marks[index]
        if index in used:
            continue
        start = text.find(mark.text)
        while start >= 0 and any(start < e and start + len(mark.text) > s for s, e, _ in spans):
            start = text.find(mark.text, start + 1)
        if start < 0:
            continue
        spans.append((start, start + len(mark.text), mark))
        used.add(index)
    if not spans:
        return escape_html(text)
    spans.sort(key=lambda span: span[0])
    out: list[str] = []
    last = 0
    for start, end, mark in spans:
        out.append(escape_html(text[last:start]))
        out.append(f"{mark.opening}{escape_html(text[start:end])}{mark.closing}")
        last = end
    out.append(escape_html(text[last:]))
    return "".join(out)


@dataclass(frozen=True)
class CopyContent:
    """Everything a copy shows, already localised where it is interface text."""

    header: str  # HTML (escaped by the caller)
    blocks: tuple[Block, ...]
    warning: str | None = None  # plain text
    original: str = ""  # plain text of the original
    original_html: str | None = None  # Telegram HTML of the original, if short enough
    original_label: str = ""  # plain text, e.g. "Original (Kreyòl)"
    show_language_tags: bool = False
    notes: tuple[str, ...] = field(default=())  # plain-text lines under the header


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def visible_len(fragment: str) -> int:
    """UTF-16 length of an HTML fragment once tags are stripped and entities decoded."""
    return utf16_len(html.unescape(re.sub(r"<[^>]+>", "", fragment)))


def split_text(text: str, limit: int) -> list[str]:
    """Split plain text into pieces of at most `limit` UTF-16 units, preferring sentence ends,
    then line breaks, then spaces; never drops a character."""
    if utf16_len(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        window = _prefix_within(rest, limit)
        cut = _best_cut(window)
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces


def _prefix_within(text: str, limit: int) -> str:
    # Longest prefix whose UTF-16 length fits (surrogate pairs count 2).
    total = 0
    for index, char in enumerate(text):
        total += 2 if ord(char) > 0xFFFF else 1
        if total > limit:
            return text[:index]
    return text


def _best_cut(window: str) -> int:
    floor = len(window) // 2
    for pattern in (_SENTENCE_END, re.compile(r"\n"), re.compile(r"\s")):
        cuts = [m.end() for m in pattern.finditer(window) if m.end() > floor]
        if cuts:
            return cuts[-1]
    return max(len(window), 1)


def render_parts(content: CopyContent, *, limit: int = TEXT_LIMIT) -> list[str]:
    """The copy as one or more HTML messages, each within `limit`; when it takes several,
    each starts with the header and its position (n/m)."""
    return pack_headed(content.header, partial(_body_pieces, content), limit - _SAFETY)


def _body_pieces(content: CopyContent, budget: int) -> list[str]:
    """Everything under the header, as pieces of at most `budget` visible characters."""
    pieces: list[str] = [escape_html(note) for note in content.notes]
    for block in content.blocks:
        prefix = f"<i>{escape_html(block.language)}:</i> " if content.show_language_tags else ""
        chunks = split_text(block.text, budget - visible_len(prefix) - 1)
        used: set[int] = set()
        pieces.append(prefix + render_marked(chunks[0], block.marks, used))
        pieces.extend(render_marked(chunk, block.marks, used) for chunk in chunks[1:])
    if content.warning:
        pieces.append(f"⚠️ <i>{escape_html(content.warning)}</i>")
    if content.original:
        label = escape_html(content.original_label)
        inner = (
            content.original_html
            if content.original_html is not None
            else escape_html(content.original)
        )
        quoted = f"<blockquote expandable><b>{label}</b>\n{inner}</blockquote>"
        if visible_len(quoted) <= budget:
            pieces.append(quoted)
        else:
            for i, chunk in enumerate(
                split_text(content.original, budget - visible_len(label) - 2)
            ):
                head = f"<b>{label}</b>\n" if i == 0 else ""
                pieces.append(f"<blockquote expandable>{head}{escape_html(chunk)}</blockquote>")
    return pieces


# Room kept in each part of a split copy for its position, " (12/345)".
_POSITION_ROOM = 12


def position_label(number: int, total: int) -> str:
    """Where a part sits in a split copy: `(2/5)`."""
    return f"({number}/{total})"


def pack_headed(header: str, body: Callable[[int], Sequence[str]], budget: int) -> list[str]:
    """A header and the pieces `body(room)` builds (none longer than `room`) packed into
    messages within `budget`. Split, every part starts with the header and its position, so
    a reader who sees any one part knows whose message it is and that it continues."""
    whole = pack([header, *body(budget)] if header else body(budget), budget)
    if len(whole) <= 1:
        return whole
    room = budget - visible_len(header) - _POSITION_ROOM - 1
    parts = pack(body(room), room)
    total = len(parts)
    heads = [
        f"{header} {position_label(n, total)}" if header else position_label(n, total)
        for n in range(1, total + 1)
    ]
    return [f"{head}\n{part}" for head, part in zip(heads, parts, strict=True)]


def pack(pieces: Sequence[str], budget: int = TEXT_LIMIT - _SAFETY) -> list[str]:
    """Join HTML pieces with newlines into as few messages as fit the budget."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        length = visible_len(piece) + 1
        if current and size + length > budget:
            parts.append("\n".join(current))
            current, size = [], 0
        current.append(piece)
        size += length
    if current:
        parts.append("\n".join(current))
    return parts


def render_caption(content: CopyContent) -> tuple[str, list[str]]:
    """A media copy: a caption within 1,024 and any overflow as following text messages."""
    parts = render_parts(content, limit=CAPTION_LIMIT)
    if len(parts) == 1:
        return parts[0], []
    # Keep the header (and the first translated block when it fits) in the caption.
    rest = render_parts(content)
    return content.header, rest


def header_line(
    *, author: str, unit: str | None, side: str | None, rank: str = "", edited_label: str = ""
) -> str:
    """`<b>Author</b> · KE-3 · MSS` with every part escaped."""
    name = f"{rank} {author}".strip() if rank else author
    bits = [f"<b>{escape_html(name or '?')}</b>"]
    if unit:
        bits.append(escape_html(unit))
    if side:
        bits.append(escape_html(side))
    if edited_label:
        bits.append(f"<i>{escape_html(edited_label)}</i>")
    return " · ".join(bits)


Localiser = Callable[..., str]
