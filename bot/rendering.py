"""How a relayed copy looks in a target chat, within Telegram's limits.

A copy is: a header (author, unit, side), the translation (one block per language for mixed
groups), a warning line when the engine flagged the translation, and the original in an
expandable blockquote. All user text is HTML-escaped; the original keeps its formatting when
Telegram gave it to us as HTML. Long copies are split below 4,096 characters (Telegram counts
UTF-16 code units after entity parsing) at sentence or line boundaries; captions stay within
1,024 with the overflow sent as following text messages.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# Margin for what Telegram counts differently from us (entities at split points, newlines).
_SAFETY = 96
_SENTENCE_END = re.compile(r"(?<=[.!?…。])\s+|\n+")


@dataclass(frozen=True)
class Block:
    """Translated text for one language of the target chat."""

    language: str
    text: str
    is_original: bool = False


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


def escape(text: str) -> str:
    """Escape user text for Telegram HTML (`<`, `>`, `&`)."""
    return html.escape(text, quote=False)


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
    """The copy as one or more HTML messages, each within `limit`."""
    budget = limit - _SAFETY
    pieces: list[str] = [content.header]
    pieces.extend(escape(note) for note in content.notes)
    for block in content.blocks:
        prefix = f"<i>{escape(block.language)}:</i> " if content.show_language_tags else ""
        chunks = split_text(block.text, budget - visible_len(prefix) - 1)
        pieces.append(prefix + escape(chunks[0]))
        pieces.extend(escape(chunk) for chunk in chunks[1:])
    if content.warning:
        pieces.append(f"⚠️ <i>{escape(content.warning)}</i>")
    if content.original:
        label = escape(content.original_label)
        inner = (
            content.original_html
            if content.original_html is not None
            else escape(content.original)
        )
        quoted = f"<blockquote expandable><b>{label}</b>\n{inner}</blockquote>"
        if visible_len(quoted) <= budget:
            pieces.append(quoted)
        else:
            for i, chunk in enumerate(
                split_text(content.original, budget - visible_len(label) - 2)
            ):
                head = f"<b>{label}</b>\n" if i == 0 else ""
                pieces.append(f"<blockquote expandable>{head}{escape(chunk)}</blockquote>")
    return _pack(pieces, budget)


def _pack(pieces: Sequence[str], budget: int) -> list[str]:
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
    bits = [f"<b>{escape(name or '?')}</b>"]
    if unit:
        bits.append(escape(unit))
    if side:
        bits.append(escape(side))
    if edited_label:
        bits.append(f"<i>{escape(edited_label)}</i>")
    return " · ".join(bits)


Localiser = Callable[..., str]
