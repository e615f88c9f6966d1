"""The operational terminology table `locales/terminology.tsv`, as plain data.

One row per term: `id`, `use`, one column per language (`en ht fr sw`), `review` (languages
whose rendering awaits a native speaker) and `note`. A cell may list variants separated by
` | `; the first is the preferred rendering, the others are other ways people write it.

`use` says how the translation engine may reuse the row:
- `fixed`: names and acronyms (`Polis Nasyonal d Ayiti`, `PNH`, `SITREP`) that are always
  rendered the same, so the engine's glossary may force them (`glossary_mapping`);
- `reference`: ordinary nouns (`inite`, `kikosi`, `blese`) that inflect or take agreement in
  French and Swahili; forcing a fixed rendering would break grammar, so they serve translators,
  reviewers and quality checks, not the glossary.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.i18n import LOCALES_DIR, SUPPORTED

TERMINOLOGY_FILE = LOCALES_DIR / "terminology.tsv"
COLUMNS: tuple[str, ...] = ("id", "use", *("en", "ht", "fr", "sw"), "review", "note")
USES = frozenset({"fixed", "reference"})


def load_terminology(path: Path | None = None) -> tuple[dict[str, Any], ...]:
    """Rows as dicts: id, use, renderings {lang: preferred}, variants {lang: (all...)}, review
    (tuple of langs), note. A malformed file raises ConfigError naming the file and line."""
    source = path or TERMINOLOGY_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the terminology table: {exc}") from None
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for lineno, cells in enumerate(reader, start=1):
        if lineno == 1:
            if tuple(cells) != COLUMNS:
                raise ConfigError(f"{source}:1: header must be {' '.join(COLUMNS)}")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        rows.append(_row(cells, source, lineno, seen))
    return tuple(rows)


def _row(cells: list[str], source: Path, lineno: int, seen: dict[str, int]) -> dict[str, Any]:
    where = f"{source}:{lineno}"
    if len(cells) != len(COLUMNS):
        raise ConfigError(f"{where}: {len(cells)} columns, expected {len(COLUMNS)} (tabs)")
    record = dict(zip(COLUMNS, (cell.strip() for cell in cells), strict=True))
    term_id = record["id"]
    if not term_id.isidentifier():
        raise ConfigError(f"{where}: id {term_id!r} must be lower_case_words")
    if term_id in seen:
        raise ConfigError(f"{where}: id {term_id!r} already used at line {seen[term_id]}")
    seen[term_id] = lineno
    if record["use"] not in USES:
        raise ConfigError(f"{where}: use must be fixed or reference, not {record['use']!r}")
    variants: dict[str, tuple[str, ...]] = {}
    for lang in SUPPORTED:
        forms = tuple(form.strip() for form in record[lang].split("|") if form.strip())
        if not forms:
            raise ConfigError(f"{where}: {term_id!r} has no {lang} rendering")
        variants[lang] = forms
    review = tuple(record["review"].split())
    unknown = [lang for lang in review if lang not in SUPPORTED]
    if unknown:
        raise ConfigError(f"{where}: review lists unknown language {unknown[0]!r}")
    return {
        "id": term_id,
        "use": record["use"],
        "renderings": {lang: forms[0] for lang, forms in variants.items()},
        "variants": variants,
        "review": review,
        "note": record["note"],
    }


def glossary_mapping(
    rows: tuple[dict[str, Any], ...] | None = None, *, uses: frozenset[str] = frozenset({"fixed"})
) -> dict[str, dict[str, str]]:
    """`{surface term: {lang: rendering}}` for the translation glossary: every variant in every
    language of the chosen rows maps to the preferred rendering in each language.

    Raises ConfigError if one surface form would need two different renderings (the glossary
    matches terms without knowing the source language).
    """
    mapping: dict[str, dict[str, str]] = {}
    owner: dict[str, str] = {}
    for row in rows if rows is not None else load_terminology():
        if row["use"] not in uses:
            continue
        for forms in row["variants"].values():
            for form in forms:
                previous = mapping.get(form)
                if previous is not None and previous != row["renderings"]:
                    raise ConfigError(
                        f"terminology: {form!r} is in rows {owner[form]!r} and {row['id']!r} "
                        "with different renderings"
                    )
                mapping[form] = dict(row["renderings"])
                owner[form] = row["id"]
    return mapping
