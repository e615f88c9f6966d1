"""Catalog maintenance behind `daraja i18n`: extract keys from code, update, compile, report.

The set of message ids is the union of the keys the code uses (found by `extract_keys`) and the
keys of the English catalog (which may hold keys ahead of the code that will use them).
`update` brings every catalog to that set with Babel, keeping translations, review flags and
translator comments; new keys arrive empty (English is shown until someone translates them).
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ConfigError
from bot.i18n import FALLBACK, KEY_FAMILIES, LOCALES_DIR, SUPPORTED, family_keys
from bot.i18n.catalogs import PLURAL_FORMS, ParsedCatalog, catalog_path, read_babel_catalog

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

PROJECT_ROOT = LOCALES_DIR.parent
SOURCE_DIRS: tuple[str, ...] = ("bot", "handlers")

# Where a key sits in each call that takes one: t(key, lang), tn(key, lang, n),
# text(ctx, key, lang), answer(update, ctx, key, lang), and the marker N_(key).
KEY_POSITIONS: dict[str, int] = {"t": 0, "tn": 0, "text": 1, "answer": 2, "N_": 0}
PLURAL_CALLS = frozenset({"tn"})
_KEY_SHAPE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_]+)+$")

LANGUAGE_TEAMS = {
    "ht": "Haitian Creole",
    "fr": "French",
    "en": "English",
    "sw": "Swahili",
}


@dataclass
class KeyUse:
    """Where a key is used, and whether as a plural (`tn`)."""

    plural: bool = False
    places: list[str] = field(default_factory=list)


@dataclass
class Extraction:
    """What the code asks of the catalogs."""

    keys: dict[str, KeyUse] = field(default_factory=dict)
    families: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, place: str, *, plural: bool = False) -> None:
        """Record one use of a literal key."""
        use = self.keys.setdefault(key, KeyUse())
        use.plural = use.plural or plural
        use.places.append(place)

    @property
    def unknown_families(self) -> dict[str, list[str]]:
        """Run-time built keys (`f"x.{y}"`) whose members are not listed in KEY_FAMILIES."""
        return {p: places for p, places in self.families.items() if p not in KEY_FAMILIES}

    def all_keys(self) -> dict[str, bool]:
        """Every key the code needs, family members expanded -> whether it is plural."""
        needed = {key: use.plural for key, use in self.keys.items()}
        for pattern in self.families:
            for key in family_keys(pattern):
                needed.setdefault(key, False)
        return needed


def extract_keys(dirs: Iterable[Path] | None = None, *, root: Path = PROJECT_ROOT) -> Extraction:
    """Find the message ids used in Python sources: literal keys of t/tn/text/answer/N_ calls,
    `key="..."` arguments (errors), `key = "..."` class attributes, and f-string families."""
    found = Extraction()
    for directory in dirs if dirs is not None else [root / d for d in SOURCE_DIRS]:
        for path in sorted(directory.rglob("*.py")):
            tree = ast.parse(path.read_bytes(), filename=str(path))
            place = _relative(path, root)
            for node in ast.walk(tree):
                _visit(node, f"{place}:{getattr(node, 'lineno', 0)}", found)
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _visit(node: ast.AST, place: str, found: Extraction) -> None:
    if isinstance(node, ast.Call):
        name = (
            node.func.id
            if isinstance(node.func, ast.Name)
            else node.func.attr
            if isinstance(node.func, ast.Attribute)
            else None
        )
        position = KEY_POSITIONS.get(name or "")
        if position is not None and len(node.args) > position:
            _record(node.args[position], place, found, plural=name in PLURAL_CALLS)
        for keyword in node.keywords:
            if keyword.arg == "key":
                _record(keyword.value, place, found, plural=False)
    elif isinstance(node, ast.ClassDef):
        for statement in node.body:
            target: ast.expr | None = None
            value: ast.expr | None = None
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], statement.value
            elif isinstance(statement, ast.AnnAssign):
                target, value = statement.target, statement.value
            if isinstance(target, ast.Name) and target.id == "key" and value is not None:
                _record(value, place, found, plural=False)


def _record(node: ast.expr, place: str, found: Extraction, *, plural: bool) -> None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if _KEY_SHAPE.match(node.value):
            found.add(node.value, place, plural=plural)
    elif isinstance(node, ast.IfExp):
        _record(node.body, place, found, plural=plural)
        _record(node.orelse, place, found, plural=plural)
    elif isinstance(node, ast.JoinedStr):
        pattern = "".join(
            str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values
        )
        if "." in pattern:
            found.families.setdefault(pattern, []).append(place)


# --- catalogs ---------------------------------------------------------------------------------


def read_all(root: Path = LOCALES_DIR) -> dict[str, tuple[Catalog, ParsedCatalog]]:
    """Read and check every catalog (English first, the others against it)."""
    english = read_babel_catalog(catalog_path(root, FALLBACK), FALLBACK)
    result = {FALLBACK: english}
    for lang in SUPPORTED:
        if lang != FALLBACK:
            result[lang] = read_babel_catalog(catalog_path(root, lang), lang, english[1])
    return {lang: result[lang] for lang in SUPPORTED}


def wanted_keys(extraction: Extraction, english: ParsedCatalog) -> dict[str, bool]:
    """The message ids every catalog must hold (English order first, then new code keys)."""
    needed = extraction.all_keys()
    wanted = {
        key: entry.plural or needed.get(key, False) for key, entry in english.entries.items()
    }
    for key in sorted(needed):
        wanted.setdefault(key, needed[key])
    return wanted


def template(wanted: dict[str, bool], english: ParsedCatalog | None = None) -> Catalog:
    """A POT template of the wanted keys; English text as extracted comments if given."""
    from babel.messages.catalog import Catalog

    pot = Catalog(project="Daraja", version="0.1", fuzzy=False)
    for key, plural in wanted.items():
        comments: list[str] = []
        if english is not None and key in english.entries:
            text = english.entries[key].text
            forms = text if isinstance(text, tuple) else (text,)
            # One comment line per form; a line break in the text shows as \n.
            comments = [f"English: {form}".replace("\n", "\\n") for form in forms if form]
        pot.add((key, key) if plural else key, auto_comments=comments)
    return pot


def new_catalog(lang: str) -> Catalog:
    """An empty catalog with Daraja's header for `lang`."""
    from babel.messages.catalog import Catalog

    catalog = Catalog(
        locale=lang,
        domain="daraja",
        project="Daraja",
        version="0.1",
        copyright_holder="Daraja",
        msgid_bugs_address="daraja@localhost",
        language_team=f"{LANGUAGE_TEAMS.get(lang, lang)} <daraja@localhost>",
        last_translator="Daraja <daraja@localhost>",
        fuzzy=False,
        header_comment=header_comment(lang),
    )
    set_plural_forms(catalog, lang)
    return catalog


def header_comment(lang: str) -> str:
    """The comment at the top of each catalog."""
    return (
        f"# {LANGUAGE_TEAMS.get(lang, lang)} interface text of Daraja.\n"
        "# Keys are stable ids; text is written by people, never machine-translated.\n"
        "# Workflow: locales/README.md (`daraja i18n status|update|compile`)."
    )


def set_plural_forms(catalog: Catalog, lang: str) -> None:
    """Give a catalog Daraja's Plural-Forms header for its language."""
    nplurals, expr = PLURAL_FORMS[lang]
    headers = [(k, v) for k, v in catalog.mime_headers if k.lower() != "plural-forms"]
    catalog.mime_headers = [*headers, ("Plural-Forms", f"nplurals={nplurals}; plural={expr};")]


def render(catalog: Catalog) -> bytes:
    """The .po bytes Daraja commits: no line wrapping, no source locations, no fuzzy header."""
    from babel.messages.pofile import write_po

    catalog.fuzzy = False
    out = io.BytesIO()
    write_po(out, catalog, width=0, no_location=True, include_previous=False)
    return out.getvalue()


@dataclass(frozen=True)
class UpdateResult:
    """What `update` changed in one catalog."""

    lang: str
    path: Path
    added: tuple[str, ...]
    obsoleted: tuple[str, ...]
    changed: bool


def update_catalogs(
    root: Path = LOCALES_DIR,
    extraction: Extraction | None = None,
    *,
    write: bool = True,
) -> list[UpdateResult]:
    """Bring every catalog to the wanted key set; write the files unless `write` is False."""
    catalogs = read_all(root)
    english = catalogs[FALLBACK][1]
    wanted = wanted_keys(extraction or extract_keys(), english)
    results: list[UpdateResult] = []
    for lang, (catalog, parsed) in catalogs.items():
        before = catalog_path(root, lang).read_bytes()
        pot = template(wanted, None if lang == FALLBACK else english)
        catalog.update(pot, no_fuzzy_matching=True, update_creation_date=False)
        catalog.header_comment = header_comment(lang)
        set_plural_forms(catalog, lang)
        after = render(catalog)
        added = tuple(k for k in wanted if k not in parsed.entries)
        obsoleted = tuple(k for k in parsed.entries if k not in wanted)
        if write and after != before:
            catalog_path(root, lang).write_bytes(after)
        results.append(
            UpdateResult(lang, catalog_path(root, lang), added, obsoleted, after != before)
        )
    return results


def compile_catalogs(root: Path = LOCALES_DIR, out_dir: Path | None = None) -> list[Path]:
    """Check every catalog and write its `.mo` (fuzzy entries included, as at run time)."""
    from babel.messages.mofile import write_mo

    written: list[Path] = []
    for lang, (catalog, _parsed) in read_all(root).items():
        target = catalog_path(out_dir or root, lang).with_suffix(".mo")
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=True)
        try:
            target.write_bytes(buffer.getvalue())
        except OSError as exc:
            raise ConfigError(f"{target}: cannot write: {exc.strerror}") from None
        written.append(target)
    return written


@dataclass(frozen=True)
class LanguageStatus:
    """Counts for one catalog and the entries that await a native speaker's review."""

    lang: str
    path: str
    total: int
    translated: int
    fuzzy: int
    missing: int
    fuzzy_entries: tuple[tuple[str, str], ...]
    missing_keys: tuple[str, ...]
    obsolete: int


def status(root: Path = LOCALES_DIR, extraction: Extraction | None = None) -> list[LanguageStatus]:
    """Per language: translated (reviewed), fuzzy (in use, awaiting review) and missing counts."""
    catalogs = read_all(root)
    english = catalogs[FALLBACK][1]
    wanted = wanted_keys(extraction or extract_keys(), english)
    report: list[LanguageStatus] = []
    for lang, (_catalog, parsed) in catalogs.items():
        fuzzy: list[tuple[str, str]] = []
        missing: list[str] = []
        translated = 0
        for key in wanted:
            entry = parsed.entries.get(key)
            if entry is None or not entry.translated:
                missing.append(key)
            elif entry.fuzzy:
                text = entry.text if isinstance(entry.text, str) else " | ".join(entry.text)
                fuzzy.append((key, text))
            else:
                translated += 1
        report.append(
            LanguageStatus(
                lang=lang,
                path=str(parsed.path),
                total=len(wanted),
                translated=translated,
                fuzzy=len(fuzzy),
                missing=len(missing),
                fuzzy_entries=tuple(fuzzy),
                missing_keys=tuple(missing),
                obsolete=len(parsed.obsolete),
            )
        )
    return report


def iter_status_lines(report: list[LanguageStatus]) -> Iterator[str]:
    """The human-readable status report."""
    yield f"{'lang':<5}{'total':>7}{'translated':>12}{'fuzzy':>7}{'missing':>9}{'obsolete':>10}"
    for item in report:
        yield (
            f"{item.lang:<5}{item.total:>7}{item.translated:>12}{item.fuzzy:>7}"
            f"{item.missing:>9}{item.obsolete:>10}"
        )
    for item in report:
        if item.fuzzy_entries:
            yield ""
            yield f"{item.lang}: {item.fuzzy} fuzzy (used, awaiting native review) — {item.path}"
            for key, text in item.fuzzy_entries:
                yield f"  {key}: {text}"
        if item.missing_keys:
            yield ""
            yield f"{item.lang}: {item.missing} missing (English is shown instead)"
            for key in item.missing_keys:
                yield f"  {key}"
