"""Reference sets: human translations an operator measures and calibrates models with.

Two tab-separated formats, UTF-8, one header line, told apart by their header:
- parallel (like tools/phrasebook/): one column per language code (`en	ht	fr	sw`), one
  sentence per row, every cell filled; each ordered pair of columns is a test pair;
- changes: `source_lang	source	target_lang	candidate	change`: a candidate translation that
  differs from a correct one by a critical edit (a dropped negation, another number...), which
  quality estimation must flag.
A bad file raises `RefSetError` naming the first bad line, before any model runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from translation.errors import TranslationError

CHANGES_HEADER = ("source_lang", "source", "target_lang", "candidate", "change")
_CODE = re.compile(r"^[a-z]{2,3}$")


class RefSetError(TranslationError):
    """A reference set that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class ParallelSet:
    """Rows of aligned sentences, one per language."""

    name: str
    languages: tuple[str, ...]
    rows: tuple[dict[str, str], ...]

    def pairs(self) -> list[tuple[str, str]]:
        """Every ordered pair of the set's languages."""
        return [(a, b) for a in self.languages for b in self.languages if a != b]


@dataclass(frozen=True)
class Change:
    """One candidate translation with a critical edit."""

    line: int
    source_lang: str
    source: str
    target_lang: str
    candidate: str
    change: str


@dataclass(frozen=True)
class ChangeSet:
    """Candidates that quality estimation must flag."""

    name: str
    changes: tuple[Change, ...]


def load(path: Path, known: Collection[str]) -> ParallelSet | ChangeSet:
    """Read a reference set; `known` are the language codes the models serve."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RefSetError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise RefSetError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise RefSetError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse(text.splitlines(), known, name=str(path))


def parse(lines: Sequence[str], known: Collection[str], *, name: str) -> ParallelSet | ChangeSet:
    """Parse the lines of a reference set (see the module docstring for the formats)."""
    if not lines or not lines[0].strip():
        raise RefSetError(
            f"{name} line 1: expected a header of language codes (e.g. 'en<TAB>ht<TAB>fr') "
            f"or {'<TAB>'.join(CHANGES_HEADER)}"
        )
    header = tuple(cell.strip() for cell in lines[0].split("\t"))
    if header == CHANGES_HEADER:
        return _changes(lines, known, name)
    bad = [c for c in header if not _CODE.match(c)]
    if bad:
        raise RefSetError(
            f"{name} line 1: {bad[0]!r} is not a language code; the header names one language "
            f"per column (e.g. 'en<TAB>ht<TAB>fr'), or is {'<TAB>'.join(CHANGES_HEADER)}"
        )
    _check_languages(header, known, name, 1)
    if len(set(header)) != len(header):
        raise RefSetError(f"{name} line 1: a language appears twice in the header")
    if len(header) < 2:
        raise RefSetError(f"{name} line 1: at least two language columns are needed")
    rows: list[dict[str, str]] = []
    for _line, cells in _body(lines, len(header), name):
        rows.append(dict(zip(header, cells, strict=True)))
    if not rows:
        raise RefSetError(f"{name}: no sentences after the header")
    return ParallelSet(name, header, tuple(rows))


def _check_languages(codes: Sequence[str], known: Collection[str], name: str, line: int) -> None:
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise RefSetError(
            f"{name} line {line}: unknown language {unknown[0]!r}; the installed models serve "
            f"{', '.join(sorted(known)) or 'no language'}"
        )


def _body(lines: Sequence[str], width: int, name: str) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            raise RefSetError(f"{name} line {number}: empty line (remove it)")
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) != width:
            raise RefSetError(
                f"{name} line {number}: {len(cells)} columns, the header has {width} "
                "(cells are separated by tabs)"
            )
        empty = [i for i, c in enumerate(cells) if not c]
        if empty:
            raise RefSetError(f"{name} line {number}: column {empty[0] + 1} is empty")
        out.append((number, cells))
    return out


def _changes(lines: Sequence[str], known: Collection[str], name: str) -> ChangeSet:
    changes: list[Change] = []
    for number, cells in _body(lines, len(CHANGES_HEADER), name):
        src_lang, source, tgt_lang, candidate, change = cells
        _check_languages((src_lang, tgt_lang), known, name, number)
        if src_lang == tgt_lang:
            raise RefSetError(f"{name} line {number}: source and target language are the same")
        changes.append(Change(number, src_lang, source, tgt_lang, candidate, change))
    if not changes:
        raise RefSetError(f"{name}: no candidates after the header")
    return ChangeSet(name, tuple(changes))
