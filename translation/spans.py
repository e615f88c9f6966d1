"""Protected spans: find what a translation must keep byte-identical, mask it, restore it.

A span is a piece of the message a model must not touch: numbers, times, dates, coordinates,
grid references, callsigns, @mentions, #tags, URLs, emails, phone numbers, emoji, operator
glossary terms, and literal ``[digits]`` written by the user.

Placeholder contract (the fixture models are trained on it; do not change it): ``mask`` turns
span number N (0-based, source order) into ``[N]``. ``unmask`` accepts the spacing variants
models emit (``[ 0 ]``, ``[0 ]``), puts every span back byte-identical (or, for a glossary term
with a fixed rendering in the target language, that rendering) and reports ``ok=False`` when a
placeholder is missing, duplicated or unknown. Reordered placeholders are fine.

Numbering per segment: the models saw each sentence alone, numbered from ``[0]``. A message of
several sentences is masked once (``[0]``..``[n-1]`` across the message) and then cut into
segments, so the engine renumbers each segment's placeholders from ``[0]`` before the model
sees it (``number_locally``) and maps the output back (``number_globally``): a sentence inside
a message reaches the model exactly as it would alone.

Repair when ``ok`` is False (done by the engine): ``split_around_spans`` cuts the message into
the text between spans and the spans themselves; ``texts_to_translate`` lists the text pieces
that contain words, without the whitespace and separators (``, ``, ``; ``, ``: ``) around them;
the engine translates those (each on its own, no placeholders) and ``join_pieces`` reinserts
the spans verbatim and the original whitespace and separators around each piece. The result
loses some context across spans but never alters a span or drops a separator.

Every pattern is anchored so that a failed attempt cannot rescan the same characters from each
start position (look-behinds exclude starts inside a token; repetitions are bounded or followed
by a fixed character), which keeps detection linear on 100,000-character inputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

# Kinds, also used as overlap priority: when two candidates overlap, the earlier kind in this
# tuple wins, then the longer candidate, then the earlier one.
KINDS: tuple[str, ...] = (
    "url",
    "email",
    "mention",
    "hashtag",
    "placeholder_literal",
    "coord",
    "grid",
    "phone",
    "date",
    "time",
    "callsign",
    "glossary",
    "emoji",
    "number",
)

_PRIORITY = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class Span:
    """A protected piece of a message: its position, exact text and kind."""

    start: int
    end: int
    text: str
    kind: str


@dataclass(frozen=True)
class GlossaryEntry:
    """An operator glossary term: kept verbatim, or rendered fixed per target language."""

    term: str
    renderings: Mapping[str, str] = field(default_factory=dict)  # lang -> fixed rendering

    def __post_init__(self) -> None:
        # A read-only copy: a glossary shared between requests must not change under them.
        object.__setattr__(self, "renderings", MappingProxyType(dict(self.renderings)))

    def __hash__(self) -> int:
        """Hash by term and renderings, so glossaries can key caches."""
        return hash((self.term, frozenset(self.renderings.items())))


@dataclass(frozen=True)
class Glossary:
    """The glossary of one operation: place names, acronyms and their fixed renderings."""

    entries: tuple[GlossaryEntry, ...] = ()

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Mapping[str, str] | None] | Iterable[str]
    ) -> Glossary:
        """Build from ``{"PNH": {}, "Port-au-Prince": {"ht": "Pòtoprens"}}`` or a list of terms."""
        if isinstance(data, Mapping):
            items: list[tuple[str, Mapping[str, str] | None]] = list(data.items())
        else:
            items = [(term, None) for term in data]
        entries = []
        for term, renderings in items:
            if not isinstance(term, str) or not term.strip():
                raise ValueError(f"glossary term must be a non-empty string, got {term!r}")
            if term != term.strip():
                raise ValueError(f"glossary term {term!r} has leading or trailing whitespace")
            clean = {str(k): str(v) for k, v in (renderings or {}).items()}
            entries.append(GlossaryEntry(term, MappingProxyType(clean)))
        return cls(tuple(entries))

    @classmethod
    def from_json(cls, source: str | Path) -> Glossary:
        """Build from a JSON file path or JSON text holding a mapping or a list of terms."""
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        data: Any = json.loads(text)
        if not isinstance(data, dict | list):
            raise ValueError("glossary JSON must be an object or a list of terms")
        return cls.from_mapping(data)

    def rendering(self, term: str, target: str) -> str | None:
        """The fixed rendering of ``term`` in ``target``, or None to keep it verbatim."""
        return self._renderings.get(term, {}).get(target)

    @cached_property
    def _renderings(self) -> dict[str, Mapping[str, str]]:
        return {entry.term: entry.renderings for entry in self.entries}

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """One case-sensitive whole-word pattern over all terms, longest first."""
        terms = sorted({e.term for e in self.entries}, key=lambda t: (-len(t), t))
        if not terms:
            return None
        alternation = "|".join(re.escape(t) for t in terms)
        return re.compile(rf"(?<![\w])(?:{alternation})(?![\w])")


# --- patterns ----------------------------------------------------------------------------------

# Characters that make up emoji: pictographs, dingbats, symbols, flags (regional indicators),
# skin tones (inside the 1F300 block), plus the joiners and selectors that glue sequences.
_EMOJI_BASE = (
    "\U0001f000-\U0001faff"  # mahjong .. symbols & pictographs extended-A (incl. 1F1E6 flags)
    "\u2600-\u27bf"  # misc symbols, dingbats
    "\u2300-\u23ff"  # misc technical (watch, hourglass, alarm clock)
    "\u2b00-\u2bff"  # arrows & stars (⬆ ⭐ ⭕)
    "\u2190-\u21ff"  # arrows
    "\u203c\u2049\u2122\u2139\u3030\u303d\u3297\u3299\u00a9\u00ae"
)
_EMOJI_GLUE = "\u200d\ufe0e\ufe0f\u20e3\U000e0020-\U000e007f"
_KEYCAP = "[0-9#*]\ufe0f?\u20e3"
_EMOJI = rf"(?:{_KEYCAP}|[{_EMOJI_BASE}])(?:{_KEYCAP}|[{_EMOJI_BASE}{_EMOJI_GLUE}])*"

_HOUR = r"(?:[01]?\d|2[0-3])"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        # URL: scheme or www., up to whitespace, minus trailing punctuation.
        (
            "url",
            r"(?<![\w@/.])(?:[Hh][Tt][Tt][Pp][Ss]?://|www\.)"
            r"[^\s<>\"'«»]*[^\s<>\"'«».,;:!?)\]}]",
        ),
        ("email", r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}(?![\w-])"),
        ("mention", r"(?<![\w@])@\w{2,32}(?!\w)"),
        ("hashtag", r"(?<![\w#&])#\w{1,64}(?!\w)"),
        ("placeholder_literal", r"\[[ \t\u00a0\u202f]{0,3}\d{1,6}[ \t\u00a0\u202f]{0,3}\]"),
        # International numbers (+509 3712 3456, +254 712 345 678), Haitian 8-digit local
        # (3712-3456) and Kenyan mobile (0712 345 678).
        (
            "phone",
            r"(?<![\w+])\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,5}(?!\w)"
            r"|(?<![\w+.,:/-])\d{4}[ \-]\d{4}(?![\w.,:/-]?\d)"
            r"|(?<![\w+.,:/-])0[17]\d{2}[ \-]?\d{3}[ \-]?\d{3}(?![\w.,:/-]?\d)",
        ),
        # Decimal lat/long as one span (18.5392,-72.3364 / 18.5392, -72.3364 / N/W suffixes),
        # and degrees-minutes-seconds (18°32'21"N 72°20'11"W).
        (
            "coord",
            r"(?<![\w.,])[-+]?\d{1,2}\.\d{2,8}°?[NS]?[ ]?,[ ]?[-+]?\d{1,3}\.\d{2,8}°?[EW]?(?![\w])"
            r"|(?<![\w.,])\d{1,2}°[ ]?\d{1,2}['′][ ]?(?:\d{1,2}(?:\.\d{1,4})?[\"″][ ]?)?[NS]"
            r"[ ,]{0,2}\d{1,3}°[ ]?\d{1,2}['′][ ]?(?:\d{1,2}(?:\.\d{1,4})?[\"″][ ]?)?[EW](?!\w)",
        ),
        # MGRS: zone + band, 100 km square, easting/northing (18Q TA 12345 67890, 18QTA1234567890).
        (
            "grid",
            r"(?<![\w])\d{1,2}[C-HJ-NP-X][ ]?[A-HJ-NP-Z]{2}[ ]?\d{1,5}[ ]?\d{1,5}(?!\w)",
        ),
        (
            "date",
            r"(?<![\w.,/:-])(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"
            r"|\d{1,2}/\d{1,2})(?![\w/]|[.\-:]\d)",
        ),
        # 14:30, 14:30:05, 2h30, 14h30, 14h, 2:30pm, 2:30 PM.
        (
            "time",
            rf"(?<![\w.,:])(?:{_HOUR}:[0-5]\d(?::[0-5]\d)?(?:[ ]?[AaPp]\.?[Mm]\.?(?!\w))?"
            rf"|{_HOUR}[hH](?:[0-5]\d)?(?:mn|min)?)(?![\w:])",
        ),
        # Candidate tokens for callsigns and unit ids; `_is_callsign` decides (a regex with the
        # rules inlined would backtrack quadratically on long hyphenated tokens).
        ("callsign", r"(?<![\w-])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*(?![\w-])"),
        ("emoji", _EMOJI),
        # Numbers and quantities: 2, 14, 3.5, 3,5, 1,200, 1 200 (no-break space), 50%, 200m.
        (
            "number",
            r"(?<![\d])(?<![\d][.,])\d+(?:[.,\u00a0\u202f]\d+)*"
            r"(?:%|(?:km|kg|mm|cm|ml|m|l)(?![\w]))?",
        ),
    )
)


_SHORT_CALLSIGN = re.compile(r"[A-Z]{1,6}[0-9]{1,4}[A-Z]?")


def _is_callsign(token: str) -> bool:
    """KE-3, PNH-UDMO-2, Alpha_2, BRAVO-1, MSS-KE-12, PNH-UDMO, KE3; any token with `_`."""
    if "_" in token:
        return True
    parts = token.split("-")
    if len(parts) == 1:
        return _SHORT_CALLSIGN.fullmatch(token) is not None
    if "A" <= token[0] <= "Z" and any(p[0].isdigit() for p in parts[1:]):
        return True
    # Letters only (PNH-UDMO, MSS-KE): unit acronyms are short parts; words written in
    # capitals are not (KRETYEN-VIVAN, MBALI-MBALI reduplicated, FANMI-LI with a pronoun).
    return (
        parts[0].isalpha()
        and parts[0].isupper()
        and all(2 <= len(p) <= _ACRONYM_PART and p.isupper() for p in parts)
        and len(set(parts)) == len(parts)
        and not any(p in _CAPITALISED_WORDS for p in parts)
    )


# Longest letter-only part of a unit acronym (UDMO, BLTS, SWAT, CIMO).
_ACRONYM_PART = 4
# Short words that end hyphenated Kreyòl/Swahili/French words written in capitals.
_CAPITALISED_WORDS = frozenset(
    {"LI", "LA", "LAN", "NAN", "AN", "YO", "MWEN", "NOU", "OU", "SA", "KI", "LE", "LES", "NA"}
)


def find_spans(text: str, glossary: Glossary | None = None) -> list[Span]:
    """Every protected span of ``text``, non-overlapping and sorted by position."""
    candidates: list[tuple[int, int, int, str]] = []  # (priority, -length, start, kind)
    for kind, pattern in _PATTERNS:
        prio = _PRIORITY[kind]
        for m in pattern.finditer(text):
            if m.end() > m.start() and (kind != "callsign" or _is_callsign(m.group())):
                candidates.append((prio, m.start() - m.end(), m.start(), kind))
    if glossary is not None and glossary.pattern is not None:
        prio = _PRIORITY["glossary"]
        for m in glossary.pattern.finditer(text):
            candidates.append((prio, m.start() - m.end(), m.start(), "glossary"))
    candidates.sort()
    taken = bytearray(len(text))
    chosen: list[Span] = []
    for _prio, neg_len, start, kind in candidates:
        end = start - neg_len
        if taken.find(1, start, end) != -1:
            continue
        taken[start:end] = b"\x01" * (end - start)
        chosen.append(Span(start, end, text[start:end], kind))
    chosen.sort(key=lambda s: s.start)
    return chosen


# --- masking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Masked:
    """A message with each span replaced by ``[N]``, and the spans in source order."""

    text: str
    spans: tuple[Span, ...]


def mask(text: str, spans: Sequence[Span]) -> Masked:
    """Replace each span of ``text`` by its placeholder ``[N]`` (N = index in source order)."""
    ordered = sorted(spans, key=lambda s: s.start)
    parts: list[str] = []
    pos = 0
    for i, span in enumerate(ordered):
        if span.start < pos or span.end > len(text) or text[span.start : span.end] != span.text:
            raise ValueError(f"span {i} does not match the text or overlaps the previous one")
        parts.append(text[pos : span.start])
        parts.append(f"[{i}]")
        pos = span.end
    parts.append(text[pos:])
    return Masked("".join(parts), tuple(ordered))


# What a model may emit for placeholder N: the exact form or spacing variants. A run of digits
# longer than the placeholder range can hold is still captured so it counts as "invented".
_TOLERANT_PLACEHOLDER = re.compile(r"\[[ \t\u00a0\u202f]{0,3}([0-9]{1,9})[ \t\u00a0\u202f]{0,3}\]")
_EXACT_PLACEHOLDER = re.compile(r"\[([0-9]{1,9})\]")


def _restore(span: Span, target: str, glossary: Glossary | None) -> str:
    if span.kind == "glossary" and glossary is not None:
        rendering = glossary.rendering(span.text, target)
        if rendering is not None:
            return rendering
    return span.text


def unmask(
    output: str, masked: Masked, target: str, glossary: Glossary | None = None
) -> tuple[str, bool]:
    """Put the spans back into a model's output; ``ok`` is False unless each appears once.

    A failed check still returns a best-effort text (known placeholders restored, the rest
    left as written) so callers can log it; they must repair instead of showing it.
    """
    n = len(masked.spans)
    seen: dict[int, int] = {}

    def replace(m: re.Match[str]) -> str:
        index = int(m.group(1))
        seen[index] = seen.get(index, 0) + 1
        if index < n:
            return _restore(masked.spans[index], target, glossary)
        return m.group(0)

    restored = _TOLERANT_PLACEHOLDER.sub(replace, output)
    ok = len(seen) == n and all(i < n and count == 1 for i, count in seen.items())
    return restored, ok


def number_locally(segment: str) -> tuple[str, tuple[int, ...]]:
    """A segment with its placeholders renumbered ``[0]``, ``[1]``... by order of appearance,
    and the message-wide number each local one stands for."""
    numbers: list[int] = []
    local: dict[int, int] = {}

    def renumber(m: re.Match[str]) -> str:
        number = int(m.group(1))
        if number not in local:
            local[number] = len(numbers)
            numbers.append(number)
        return f"[{local[number]}]"

    return _EXACT_PLACEHOLDER.sub(renumber, segment), tuple(numbers)


# What an invented local placeholder becomes message-wide: a number no message reaches, so
# `unmask` still reports it.
_UNKNOWN_PLACEHOLDER = "[999999999]"


def number_globally(output: str, numbers: Sequence[int]) -> str:
    """A model's output for a segment numbered by `number_locally`, with the message-wide
    numbers back (spacing variants normalised; an invented placeholder stays unknown)."""

    def renumber(m: re.Match[str]) -> str:
        index = int(m.group(1))
        return f"[{numbers[index]}]" if index < len(numbers) else _UNKNOWN_PLACEHOLDER

    return _TOLERANT_PLACEHOLDER.sub(renumber, output)


# --- repair: translate around the spans --------------------------------------------------------

# Around a text piece between spans: whitespace and the separators that join it to the span
# before or after ("[0], need medevac", "Position [0]: clear"). Kept out of what the model sees
# and put back as written (a model given ", need medevac" may drop the comma).
_SEPARATORS = frozenset(",;:")


def _is_separator(ch: str) -> bool:
    return ch.isspace() or ch in _SEPARATORS


def separate(piece: str) -> tuple[str, str, str]:
    """A text piece as (leading separators, words to translate, trailing separators)."""
    start = 0
    while start < len(piece) and _is_separator(piece[start]):
        start += 1
    end = len(piece)
    while end > start and _is_separator(piece[end - 1]):
        end -= 1
    return piece[:start], piece[start:end], piece[end:]


def split_around_spans(masked: Masked) -> list[str | Span]:
    """The original message as text pieces and spans, in order (for span-safe repair)."""
    pieces: list[str | Span] = []
    pos = 0
    for m in _EXACT_PLACEHOLDER.finditer(masked.text):
        index = int(m.group(1))
        if index >= len(masked.spans):  # cannot happen for text made by `mask`
            raise ValueError(f"masked text holds an unknown placeholder [{index}]")
        if m.start() > pos:
            pieces.append(masked.text[pos : m.start()])
        pieces.append(masked.spans[index])
        pos = m.end()
    if pos < len(masked.text):
        pieces.append(masked.text[pos:])
    return pieces


def _has_word(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def texts_to_translate(pieces: Sequence[str | Span]) -> list[str]:
    """The text pieces that contain words, without their separators, in order: what repair
    sends to the model."""
    return [separate(p)[1] for p in pieces if isinstance(p, str) and _has_word(p)]


def join_pieces(
    pieces: Sequence[str | Span],
    translations: Sequence[str],
    target: str,
    glossary: Glossary | None = None,
) -> str:
    """Rebuild a message: translated text (its whitespace and separators kept) and the spans
    verbatim."""
    wanted = sum(1 for p in pieces if isinstance(p, str) and _has_word(p))
    if len(translations) != wanted:
        raise ValueError(f"expected {wanted} translations, got {len(translations)}")
    out: list[str] = []
    it = iter(translations)
    for piece in pieces:
        if isinstance(piece, Span):
            out.append(_restore(piece, target, glossary))
        elif _has_word(piece):
            lead, _words, trail = separate(piece)
            out.append(lead + separate(next(it))[1] + trail)
        else:
            out.append(piece)
    return "".join(out)
