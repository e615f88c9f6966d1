"""Reading and checking the gettext catalogs `locales/<lang>/LC_MESSAGES/daraja.po`.

Babel's reader accepts much that hurts at run time (an unterminated string, a duplicate id, a
placeholder with an unbalanced brace, Telegram HTML that the Bot API rejects) and its errors
carry no usable line number. So each file is first checked here line by line, then parsed with
Babel, then its entries are checked; every problem reads `path:line: what is wrong`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ConfigError

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

DOMAIN = "daraja"

# gettext plural rules per language. Kreyòl nouns do not inflect for number (plurality is
# carried by the determiner "yo", and a counted noun takes none: "1 minit", "12 minit"), so
# `ht` has a single form; French treats 0 and 1 as singular; English and Swahili do not.
PLURAL_FORMS: dict[str, tuple[int, str]] = {
    "ht": (1, "0"),
    "fr": (2, "(n > 1)"),
    "en": (2, "(n != 1)"),
    "sw": (2, "(n != 1)"),
}

# Tags Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style).
_TELEGRAM_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a"}
    | {"tg-spoiler", "span", "blockquote", "tg-emoji"}
)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[([0-9]+)\])?)\s+(\".*)$")
_ESCAPES = frozenset('\\"ntr')


class CatalogError(ConfigError):
    """A catalog file is broken; the message names the file and line."""

    key = "error.config"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a catalog, at a line of a file."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Entry:
    """One message of a catalog: its key, text (a tuple of forms if plural) and review state."""

    key: str
    text: str | tuple[str, ...]
    line: int
    fuzzy: bool = False

    @property
    def plural(self) -> bool:
        """Whether the entry has plural forms (used with `tn`)."""
        return isinstance(self.text, tuple)

    @property
    def translated(self) -> bool:
        """Whether every form has text."""
        forms = self.text if isinstance(self.text, tuple) else (self.text,)
        return all(forms)


@dataclass(frozen=True)
class ParsedCatalog:
    """A checked catalog: its entries in file order and its plural rule."""

    lang: str
    path: Path
    entries: dict[str, Entry]
    nplurals: int
    plural_expr: str
    header_language: str | None
    header_fuzzy: bool
    obsolete: tuple[str, ...] = field(default=())


def catalog_path(root: Path, lang: str) -> Path:
    """Where the catalog of `lang` lives under a locales directory."""
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def placeholders(text: str) -> frozenset[str]:
    """The `{name}` fields of a text; raises ValueError on broken braces or unnamed fields."""
    names: set[str] = set()
    for _literal, name, _spec, _conv in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} must be a name such as {{unit}}")
        names.add(name)
    return frozenset(names)


def html_problem(text: str) -> str | None:
    """Why `text` would be refused by Telegram's HTML parse mode, or None if it is fine."""
    stack: list[str] = []
    for match in _TAG.finditer(text):
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if tag not in _TELEGRAM_TAGS:
            return f"<{tag}> is not a tag Telegram accepts"
        if not closing:
            stack.append(tag)
        elif not stack or stack.pop() != tag:
            return f"</{tag}> does not close the open tag"
    if stack:
        return f"<{stack[-1]}> is not closed"
    rest = _ENTITY.sub("", _TAG.sub("", text))
    for char, entity in (("<", "&lt;"), (">", "&gt;"), ("&", "&amp;")):
        if char in rest:
            return f"a bare {char!r} breaks Telegram HTML: write {entity}"
    return None


def check_syntax(data: bytes, path: Path) -> list[Problem]:
    """Line-level checks Babel skips: string quoting, escapes, msgid/msgstr order, duplicates."""
    problems: list[Problem] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Problem(path, data[: exc.start].count(b"\n") + 1, "not valid UTF-8")]
    header = re.search(r"nplurals\s*=\s*([0-9]+)", text)
    nplurals = int(header.group(1)) if header else 2
    seen: dict[tuple[str | None, str], int] = {}
    state = "start"  # start | ctxt | id | plural | str
    current: list[str] = []
    ctxt: str | None = None
    entry_line = 0

    def finish() -> None:
        if state in ("id", "plural", "ctxt"):
            problems.append(Problem(path, entry_line, "msgid without msgstr"))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        quoted = match.group(3) if match else line
        problem = _string_problem(quoted)
        if problem is not None:
            problems.append(Problem(path, lineno, problem))
            continue
        value = _unquote(quoted)
        if match is None:
            if state == "start":
                problems.append(Problem(path, lineno, "text outside an entry"))
            else:
                current.append(value)
            continue
        keyword = match.group(1)
        if keyword == "msgctxt" or (keyword == "msgid" and state != "ctxt"):
            finish()
            ctxt, entry_line = None, lineno
        if keyword == "msgctxt":
            state, current = "ctxt", [value]
        elif keyword == "msgid":
            if state == "ctxt":
                ctxt = "".join(current)
            state, current = "id", [value]
            entry_line = lineno
        elif keyword == "msgid_plural":
            if state != "id":
                problems.append(Problem(path, lineno, "msgid_plural without msgid"))
            msgid = "".join(current)
            _remember(seen, (ctxt, msgid), entry_line, path, problems)
            state, current = "plural", [value]
        else:
            index = match.group(2)
            if index is not None and int(index) >= nplurals:
                problems.append(
                    Problem(
                        path, lineno, f"msgstr[{index}] but the header says nplurals={nplurals}"
                    )
                )
            if state == "id":
                _remember(seen, (ctxt, "".join(current)), entry_line, path, problems)
            elif state not in ("plural", "str"):
                problems.append(Problem(path, lineno, "msgstr without msgid"))
            state, current = "str", [value]
    finish()
    return problems


def _remember(
    seen: dict[tuple[str | None, str], int],
    key: tuple[str | None, str],
    line: int,
    path: Path,
    problems: list[Problem],
) -> None:
    if key[1] and key in seen:
        problems.append(Problem(path, line, f"{key[1]!r} already defined at line {seen[key]}"))
    seen[key] = line


def _string_problem(quoted: str) -> str | None:
    if not quoted.startswith('"'):
        return "expected a quoted string"
    if len(quoted) < 2 or not quoted.endswith('"'):
        return "unterminated string"
    body = quoted[1:-1]
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            if i + 1 >= len(body):
                return "unterminated string"
            if body[i + 1] not in _ESCAPES:
                return f"unknown escape \\{body[i + 1]}"
            i += 2
            continue
        if char == '"':
            return 'unescaped quote inside a string (write \\")'
        i += 1
    return None


def _unquote(quoted: str) -> str:
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}
    return re.sub(r"\\(.)", lambda m: table[m.group(1)], quoted[1:-1])


def read_catalog(path: Path, lang: str, english: ParsedCatalog | None = None) -> ParsedCatalog:
    """Parse and check one catalog (against English if given); raises CatalogError."""
    return read_babel_catalog(path, lang, english)[1]


def read_babel_catalog(
    path: Path, lang: str, english: ParsedCatalog | None = None
) -> tuple[Catalog, ParsedCatalog]:
    """Parse and check one catalog, returning Babel's object too (for update and compile)."""
    import io

    from babel.messages.pofile import PoFileError, read_po

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc.strerror}") from None
    problems = check_syntax(data, path)
    if problems:
        raise _error(problems)
    try:
        catalog = read_po(io.BytesIO(data), locale=lang, abort_invalid=True, domain=DOMAIN)
    except (PoFileError, ValueError) as exc:
        # Babel counts lines from 0 and sometimes reports none: name the file at least.
        raise CatalogError(f"{path}: broken catalog: {exc}") from None
    entries: dict[str, Entry] = {}
    for message in catalog:
        if not message.id:
            continue
        key = str(message.id[0] if isinstance(message.id, (tuple, list)) else message.id)
        text: str | tuple[str, ...]
        if isinstance(message.id, tuple):
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            text = tuple(str(form or "") for form in forms)
        else:
            text = message.string if isinstance(message.string, str) else ""
        entries[key] = Entry(key, text, message.lineno or 0, fuzzy=message.fuzzy)
    # Babel rewrites the Language header from the locale it is given: read the file's own.
    language = re.search(rb'^"Language: *([^\\"]*)\\n"', data, re.M)
    parsed = ParsedCatalog(
        lang=lang,
        path=path,
        entries=entries,
        nplurals=catalog.num_plurals,
        plural_expr=catalog.plural_expr,
        header_language=language.group(1).decode().strip() if language else None,
        header_fuzzy=bool(catalog.fuzzy),
        obsolete=tuple(str(k) for k in catalog.obsolete),
    )
    problems = entry_problems(parsed, english)
    if problems:
        raise _error(problems)
    return catalog, parsed


def entry_problems(parsed: ParsedCatalog, english: ParsedCatalog | None = None) -> list[Problem]:
    """Placeholders, Telegram HTML and plural-form counts of every entry (vs English if given)."""
    problems: list[Problem] = []
    for entry in parsed.entries.values():
        forms = entry.text if isinstance(entry.text, tuple) else (entry.text,)
        if entry.plural and len(forms) != parsed.nplurals:
            problems.append(
                Problem(
                    parsed.path,
                    entry.line,
                    f"{entry.key!r} has {len(forms)} plural forms; the header says "
                    f"nplurals={parsed.nplurals}",
                )
            )
        reference = english.entries.get(entry.key) if english is not None else None
        wanted: frozenset[str] | None = None
        if reference is not None and reference.translated:
            ref_forms = reference.text if isinstance(reference.text, tuple) else (reference.text,)
            try:
                wanted = frozenset().union(*(placeholders(f) for f in ref_forms))
            except ValueError:
                wanted = None  # reported against the English file itself
        for form in forms:
            if not form:
                continue
            try:
                names = placeholders(form)
            except ValueError as exc:
                problems.append(Problem(parsed.path, entry.line, f"{entry.key!r}: {exc}"))
                continue
            if wanted is not None and not _placeholders_match(names, wanted, entry.plural):
                extra, lost = names - wanted, wanted - names - ({"n"} if entry.plural else set())
                parts = [f"{_fmt(extra)} not in English's text"] if extra else []
                parts += [f"{_fmt(frozenset(lost))} missing"] if lost else []
                problems.append(
                    Problem(parsed.path, entry.line, f"{entry.key!r}: {'; '.join(parts)}")
                )
            html = html_problem(form)
            if html is not None:
                problems.append(Problem(parsed.path, entry.line, f"{entry.key!r}: {html}"))
    return problems


def _placeholders_match(names: frozenset[str], wanted: frozenset[str], plural: bool) -> bool:
    # A plural form may leave out {n} ("one minute ago" for n == 1), nothing else.
    if plural:
        return names - {"n"} == wanted - {"n"} and names <= wanted | {"n"}
    return names == wanted


def _fmt(names: frozenset[str]) -> str:
    return ", ".join(f"{{{n}}}" for n in sorted(names)) or "no placeholders"


def header_problems(parsed: ParsedCatalog) -> list[Problem]:
    """Header checks: Language and Plural-Forms as Daraja expects, header not fuzzy."""
    problems: list[Problem] = []
    if parsed.header_language != parsed.lang:
        problems.append(
            Problem(
                parsed.path,
                1,
                f"header Language is {parsed.header_language!r}, not {parsed.lang!r}",
            )
        )
    expected = PLURAL_FORMS.get(parsed.lang)
    if expected is not None and (parsed.nplurals, parsed.plural_expr) != expected:
        problems.append(
            Problem(
                parsed.path,
                1,
                f"Plural-Forms is nplurals={parsed.nplurals}; plural={parsed.plural_expr}, "
                f"expected nplurals={expected[0]}; plural={expected[1]};",
            )
        )
    if parsed.header_fuzzy:
        problems.append(Problem(parsed.path, 1, "the header is marked fuzzy"))
    return problems


def _error(problems: list[Problem]) -> CatalogError:
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return CatalogError(f"broken catalog {problems[0]}{more}")
