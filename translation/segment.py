"""Split long messages into translatable segments and put the translations back in the layout.

A message becomes a sequence of pieces: translatable segments (sentences, or parts of an
over-long sentence) and fixed layout kept as written (line breaks, indentation, bullets such as
``- ``, ``• ``, ``1. ``, the whitespace between sentences, lines with no words such as emoji-only
or numbers-only lines). Concatenating the pieces gives the message back exactly, so nothing is
ever dropped or truncated: ``reassemble(s, segments(s)) == text`` for every text.

Sentence splitting is rule-based (no stanza/spaCy): a sentence ends at ``.``, ``!``, ``?``,
``…`` (and runs such as ``?!`` or ``...``), optionally followed by closing quotes or brackets,
then whitespace. It does not end after a known abbreviation (``Sgt.``, ``Dr.``, ``No.``, ``Bw.``),
an initial (``J. Pierre``), inside numbers (``3.5``, ``14.30``) or after an ellipsis followed by
a lower-case word. French spacing before ``?``/``!`` and ``»`` is handled.

The engine should segment the *masked* text (see ``spans.mask``): placeholders contain no
whitespace or sentence punctuation, so a segment boundary never cuts a protected span.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Piece:
    """A run of the message: a segment to translate, or layout kept verbatim."""

    text: str
    translate: bool


@dataclass(frozen=True)
class Segmented:
    """A message cut into pieces whose concatenation is the original text."""

    pieces: tuple[Piece, ...]

    @property
    def text(self) -> str:
        """The original message."""
        return "".join(p.text for p in self.pieces)


# Line breaks, including the Unicode ones str.splitlines() knows.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# Indentation, then an optional bullet or list number, then the line's content.
_BULLET = re.compile(
    r"[-*•·▪◦‣–—>]+[ \t\u00a0]+"  # - item, • item, > quote
    r"|(?:\d{1,3}[.)]|[a-z][.)]|[A-Z]\))[ \t\u00a0]+"  # 1. item, 2) item, a) item, B) item
    r"|\(\d{1,3}\)[ \t\u00a0]+"  # (1) item
)
# A sentence terminator: a run of . ! ? … (with French spacing before ? !), then closing quotes
# or brackets, then whitespace. Bounded runs keep the scan linear.
_TERMINATOR = re.compile(
    r"(?:[ \u00a0\u202f]?[!?]|[.…]){1,10}(?:[ \u00a0\u202f]?[\"'»”’)\]])?(?=\s)"
    r"|[.…!?]{1,10}[\"'»”’)\]]{0,3}(?=\s)"
)
_WHITESPACE = re.compile(r"\s+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Titles and ranks (en/fr/sw/ht) written before a name: a period after them never ends a
# sentence when the title is capitalised ("Sgt. Joseph", but Kreyòl "... pa gen. Nou ...").
_TITLES = _words(
    """
    mr mrs ms dr prof sr jr st ste sgt cpl cpt capt lt col gen maj cmdt cdt adj insp supt
    cmdr cdr pvt ofc brig pte cne cen lcl sgc adc mme mlle mgr me bw bi dkt mh
    """
)
# Other abbreviations: the period ends a sentence only if a capital letter follows
# ("No. 5", "approx. 20 men", "etc. and" stay together; "... etc. We left" splits).
_ABBREVIATIONS = _words(
    """
    no nr nos num ref tel fig vol art p pp ch sec etc vs e.g i.e eg ie ex cf approx env av apr
    a.m p.m jan feb fév fev mar avr jun jul juil aug sep sept oct nov dec déc rd ave bd blvd
    km min max hr hrs
    """
)


def _has_word(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _word_before(text: str, end: int) -> str:
    """The token that ends at ``end`` (letters, digits and inner dots), as written."""
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
        if end - start > 20:  # long tokens are not abbreviations; keep this O(1)
            return ""
    return text[start:end].strip(".")


def _ends_sentence(text: str, term_start: int, term: str, next_start: int) -> bool:
    """Whether the terminator ``term`` found at ``term_start`` ends a sentence."""
    nxt = text[next_start] if next_start < len(text) else ""
    if "!" in term or "?" in term or nxt == "":
        return True
    if "…" in term or ".." in term:  # ellipsis: a pause unless a new sentence starts
        return not nxt.islower()
    word = _word_before(text, term_start)
    if not word:
        return True
    lower = word.lower()
    if lower in _TITLES and word[0].isupper():
        return False
    if lower in _ABBREVIATIONS:
        return nxt.isupper()
    if len(word) == 1 and word.isalpha() and word.isupper():
        return False  # an initial: "J. Pierre", "Plan B. ..." stays together
    if "." in word:  # dotted acronym: "U.N. team" continues, "U.N. Team ..." splits
        return not nxt.islower()
    return True


def _sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text`` (a line's content without its layout)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for m in _TERMINATOR.finditer(text):
        ws = _WHITESPACE.match(text, m.end())
        next_start = ws.end() if ws else m.end()
        if _ends_sentence(text, m.start(), m.group(), next_start):
            bounds.append((start, m.end()))
            start = next_start
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


_CLAUSE_BREAK = re.compile(r"[,;:](?=\s)")


def _split_long(sentence: str, max_chars: int) -> list[Piece]:
    """Cut an over-long sentence at clause punctuation, else spaces, else anywhere."""
    pieces: list[Piece] = []
    rest = sentence
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        clause = max((m.start() + 1 for m in _CLAUSE_BREAK.finditer(window)), default=0)
        space = max(window.rfind(" "), window.rfind("\u00a0"), window.rfind("\t"))
        if clause >= max_chars // 2 or (clause > 0 and space <= 0):
            cut = clause  # after the comma / semicolon / colon
        elif space > 0:
            cut = space
        else:
            cut = max_chars  # one enormous word: cut it (never truncate)
        ws = _WHITESPACE.match(rest, cut)
        gap_end = ws.end() if ws else cut
        head = rest[:cut]
        pieces.append(Piece(head, _has_word(head)))
        pieces.append(Piece(rest[cut:gap_end], False))
        rest = rest[gap_end:]
    pieces.append(Piece(rest, _has_word(rest)))
    return pieces


def _segment_line(line: str, max_chars: int) -> list[Piece]:
    """Layout and segments of one line (without its line break)."""
    content_start = len(line) - len(line.lstrip())
    bullet = _BULLET.match(line, content_start)
    if bullet:
        content_start = bullet.end()
    content_end = max(len(line.rstrip()), content_start)
    pieces = [Piece(line[:content_start], False)]
    content = line[content_start:content_end]
    if not _has_word(content):
        pieces.append(Piece(content, False))  # emoji-only, numbers-only, punctuation
    else:
        pos = 0
        for start, end in _sentences(content):
            pieces.append(Piece(content[pos:start], False))
            sentence = content[start:end]
            if len(sentence) > max_chars:
                pieces.extend(_split_long(sentence, max_chars))
            else:
                pieces.append(Piece(sentence, _has_word(sentence)))
            pos = end
        pieces.append(Piece(content[pos:], False))
    pieces.append(Piece(line[content_end:], False))
    return pieces


def segment(text: str, *, max_chars: int = 400) -> Segmented:
    """Cut ``text`` into sentences and lines, keeping layout fixed; never truncates."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[Piece] = []
    pos = 0
    for m in _LINE_BREAK.finditer(text):
        pieces.extend(_segment_line(text[pos : m.start()], max_chars))
        pieces.append(Piece(m.group(), False))
        pos = m.end()
    pieces.extend(_segment_line(text[pos:], max_chars))
    return Segmented(_merge_layout(pieces))


def _merge_layout(pieces: list[Piece]) -> tuple[Piece, ...]:
    """Join adjacent layout pieces and drop empty ones (same text, fewer pieces)."""
    merged: list[Piece] = []
    for piece in pieces:
        if not piece.text:
            continue
        if merged and not piece.translate and not merged[-1].translate:
            merged[-1] = Piece(merged[-1].text + piece.text, False)
        else:
            merged.append(piece)
    return tuple(merged)


def segments(s: Segmented) -> list[str]:
    """The texts to translate, in order."""
    return [p.text for p in s.pieces if p.translate]


def reassemble(s: Segmented, translated: Sequence[str]) -> str:
    """The message with each segment replaced by its translation, layout untouched."""
    wanted = sum(1 for p in s.pieces if p.translate)
    if len(translated) != wanted:
        raise ValueError(f"expected {wanted} translated segments, got {len(translated)}")
    it = iter(translated)
    return "".join(next(it) if p.translate else p.text for p in s.pieces)
