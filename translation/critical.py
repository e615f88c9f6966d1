"""Critical content: negations, numbers and directions that must survive translation.

The small edits that turn an order around ("Do not fire" -> "Fire", twelve -> two, north ->
south) keep a translation fluent and similar on every other measure. Each language has a
lexicon (translation/lexicons/<lang>.tsv, extendable by operators with a directory of their
own) mapping words to concepts; a translation whose source and output disagree on them has
changed meaning: one side negated and the other not, different sets of numbers, different
sets of directions.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "lexicons"
# A prefix entry ("hatu*") needs this many letters after the prefix (so "hatu" alone is not it).
_PREFIX_EXTRA = 2
_PIECE = re.compile(r"[^\W_]+(?:'[^\W_]*)?|[.!?;:\n]")
SENTENCE_START = "^"
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "`": "'"})


class LexiconError(ValueError):
    """A lexicon file line that cannot be read (names the file and line)."""


def fold(text: str) -> str:
    """Lower-case, accent-free, straight apostrophes: how lexicon phrases are compared."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_APOSTROPHES))
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Words of `text` as the lexicons see them (hyphens split, apostrophes kept inside), with
    "^" where a sentence starts (Kreyòl "Pa tire" is an order not to fire; "pa" inside a
    sentence is as often "by")."""
    out = [SENTENCE_START]
    for piece in _PIECE.findall(fold(text).replace("-", " ")):
        if piece in ".!?;:\n":
            if out[-1] != SENTENCE_START:
                out.append(SENTENCE_START)
        else:
            out.append(piece)
    return out


@dataclass
class Lexicon:
    """One language's phrases: exact phrases (as token tuples) and word prefixes."""

    phrases: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    prefixes: list[tuple[str, str]] = field(default_factory=list)
    longest: int = 1

    def add(self, concept: str, phrase: str) -> None:
        """Add one phrase for a concept ("-": the phrase is no critical word, whatever a
        prefix says)."""
        folded = fold(phrase.strip())
        if folded.endswith("*"):
            self.prefixes.append((folded[:-1], concept))
            return
        # tokens() marks the start of the phrase as a sentence start: kept only when the
        # phrase asks for it ("^ pa": "pa" opening a sentence).
        key = tuple(tokens(folded))
        if not folded.startswith(SENTENCE_START):
            key = key[1:]
        if key:
            concepts = self.phrases.setdefault(key, [])
            if concept != "-":
                concepts.append(concept)
            self.longest = max(self.longest, len(key))

    def concepts(self, text: str) -> list[str]:
        """The concepts found in `text`, longest phrases first, each word used once."""
        words = tokens(text)
        found: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self.longest, len(words) - i), 0, -1):
                concepts = self.phrases.get(tuple(words[i : i + size]))
                if concepts is not None:
                    found.extend(concepts)
                    i += size
                    break
            else:
                word = words[i]
                if word.isdigit():
                    found.append(f"num:{int(word)}")
                else:
                    for prefix, concept in self.prefixes:
                        # "n'" + "a" is a word; "hatu" alone is not "hatujafika".
                        extra = 1 if prefix.endswith("'") else _PREFIX_EXTRA
                        if word.startswith(prefix) and len(word) >= len(prefix) + extra:
                            found.append(concept)
                            break
                i += 1
        return found


def parse_lexicon(lines: Iterable[str], lexicon: Lexicon, *, name: str) -> None:
    """Add `concept<TAB>phrase` lines to `lexicon`; LexiconError names a bad line."""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        concept, sep, phrase = line.partition("\t")
        concept = concept.strip()
        valid = concept == "-" or re.fullmatch(r"~?(neg|num:\d+|dir:[a-z_]+)", concept)
        if not sep or not phrase.strip() or not valid:
            raise LexiconError(
                f"{name} line {number}: expected 'neg', 'num:N', 'dir:NAME' (or '~' before "
                "one, or '-'), a tab and a word or phrase"
            )
        lexicon.add(concept, phrase)


class Lexicons:
    """The lexicons of every language: bundled ones plus an operator directory, loaded once."""

    def __init__(self, extra_dir: Path | None = None) -> None:
        self.extra_dir = extra_dir
        self._lock = threading.Lock()
        self._loaded: dict[str, Lexicon] = {}

    def get(self, language: str) -> Lexicon:
        """The lexicon of one language (empty for a language without files)."""
        found = self._loaded.get(language)
        if found is not None:
            return found
        with self._lock:
            if language not in self._loaded:
                lexicon = Lexicon()
                dirs = [BUNDLED_DIR] + ([self.extra_dir] if self.extra_dir else [])
                for directory in dirs:
                    path = directory / f"{language}.tsv"
                    if re.fullmatch(r"[a-z]{2,3}", language) and path.is_file():
                        text = path.read_text(encoding="utf-8")
                        parse_lexicon(text.splitlines(), lexicon, name=str(path))
                self._loaded[language] = lexicon
            return self._loaded[language]


_KINDS = (("negation", "neg"), ("number", "num:"), ("direction", "dir:"))


def changed(
    source: str, source_lang: str, output: str, target_lang: str, lexicons: Lexicons
) -> tuple[str, ...]:
    """What critical content differs between source and output: "negation", "number",
    "direction" (empty when they agree)."""
    src = lexicons.get(source_lang).concepts(source)
    out = lexicons.get(target_lang).concepts(output)
    src_strong = {c for c in src if not c.startswith("~")}
    out_strong = {c for c in out if not c.startswith("~")}
    # A weak (ambiguous) word confirms the other side's concept but is no evidence by itself.
    src_any = src_strong | {c[1:] for c in src if c.startswith("~")}
    out_any = out_strong | {c[1:] for c in out if c.startswith("~")}
    found: list[str] = []
    for kind, prefix in _KINDS:
        lost = {c for c in src_strong - out_any if c.startswith(prefix)}
        added = {c for c in out_strong - src_any if c.startswith(prefix)}
        if lost or added:
            found.append(kind)
    return tuple(found)


_DEFAULT: Lexicons | None = None
_DEFAULT_LOCK = threading.Lock()


def default_lexicons() -> Lexicons:
    """The bundled lexicons (shared, read-only once loaded)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Lexicons()
        return _DEFAULT
