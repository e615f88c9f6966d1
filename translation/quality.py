"""Heuristic flags for translations a reader should double-check against the original.

Each flag names a typical failure of small or out-of-domain models: nothing came out, far too
much or too little came out (a hallucinated loop, a dropped clause), the same words repeat,
the text came back untranslated, or the model itself was unsure. Protected spans (numbers,
callsigns, place names...) are ignored where they would distort the comparison. The span-repair
flag is set by the engine, which is the one that knows a repair happened.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from translation.spans import Glossary, find_spans
from translation.types import Flag

# Length bounds, in characters: output / input must stay within [MIN_RATIO, MAX_RATIO], with
# SLACK characters of tolerance so that short replies ("Sawa" -> "Okay, understood") pass.
# Observed between ht, fr, en and sw on parallel operational sentences: about 0.7x to 1.6x.
MAX_RATIO = 2.5
MIN_RATIO = 0.4
SLACK_CHARS = 12
# Repetition: the same word this many times in a row, or the same 3-word sequence this often.
MAX_SAME_TOKEN_RUN = 4
MAX_TRIGRAM_REPEATS = 3
# Passthrough: share of the output's words also in the input, over at least this many words.
PASSTHROUGH_OVERLAP = 0.9
PASSTHROUGH_MIN_WORDS = 2

_TOKEN = re.compile(r"\w+|[^\w\s]+")
_WORD = re.compile(r"[^\W\d_]+")


def _without_spans(text: str, glossary: Glossary | None) -> str:
    """The text with protected spans cut out (they legitimately stay the same)."""
    parts: list[str] = []
    pos = 0
    for span in find_spans(text, glossary):
        parts.append(text[pos : span.start])
        parts.append(" ")
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


def _words(text: str) -> list[str]:
    """Lower-cased, accent-insensitive words of ``text``."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORD.findall(folded)


def _visible_len(text: str) -> int:
    return len("".join(text.split()))


def _length_flag(source: str, output: str) -> Flag | None:
    src, out = _visible_len(source), _visible_len(output)
    if out > src * MAX_RATIO + SLACK_CHARS:
        return Flag.TOO_LONG
    if out < src * MIN_RATIO - SLACK_CHARS:
        return Flag.TOO_SHORT
    return None


def _worst_repetition(tokens: Sequence[str]) -> tuple[int, int]:
    """(longest run of one token, highest count of one 3-gram)."""
    run = best_run = 0
    previous: str | None = None
    for token in tokens:
        run = run + 1 if token == previous else 1
        best_run = max(best_run, run)
        previous = token
    trigrams = Counter(zip(tokens, tokens[1:], tokens[2:], strict=False))
    return best_run, max(trigrams.values(), default=0)


def _repeated(source: str, output: str) -> bool:
    out_run, out_tri = _worst_repetition(_TOKEN.findall(output.casefold()))
    src_run, src_tri = _worst_repetition(_TOKEN.findall(source.casefold()))
    # A repetition the author wrote ("Alpha Alpha Alpha Alpha") is not the model's fault.
    return (out_run >= MAX_SAME_TOKEN_RUN and out_run > src_run) or (
        out_tri >= MAX_TRIGRAM_REPEATS and out_tri > src_tri
    )


def _passthrough(source: str, output: str, glossary: Glossary | None) -> bool:
    src = _words(_without_spans(source, glossary))
    out = _words(_without_spans(output, glossary))
    if len(src) < PASSTHROUGH_MIN_WORDS or not out:
        return False  # nothing translatable: "KE-3 14:30" or "OK" legitimately stays as is
    if src == out:
        return True
    shared = sum((Counter(src) & Counter(out)).values())
    return shared >= PASSTHROUGH_OVERLAP * max(len(src), len(out))


def flags_for(
    source: str,
    output: str,
    *,
    source_lang: str,
    target_lang: str,
    score: float | None,
    low_confidence: float = 0.35,
    glossary: Glossary | None = None,
) -> tuple[Flag, ...]:
    """The warnings a reader should see for ``output``, the translation of ``source``."""
    flags: list[Flag] = []
    if not output.strip():
        if source.strip():
            flags.append(Flag.EMPTY)
    else:
        length = _length_flag(source, output)
        if length is not None:
            flags.append(length)
        if _repeated(source, output):
            flags.append(Flag.REPEATED)
        if source_lang != target_lang and _passthrough(source, output, glossary):
            flags.append(Flag.PASSTHROUGH)
    if score is not None and score < low_confidence:
        flags.append(Flag.LOW_CONFIDENCE)
    return tuple(flags)
