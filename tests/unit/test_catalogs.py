"""The shipped catalogs: complete for the code, same placeholders as English, compilable,
plural forms right for each language, Telegram-safe HTML, consistent operational vocabulary."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bot.i18n import FALLBACK, KEY_FAMILIES, LOCALES_DIR, SUPPORTED, family_keys
from bot.i18n.catalogs import (
    PLURAL_FORMS,
    ParsedCatalog,
    catalog_path,
    entry_problems,
    header_problems,
    placeholders,
    read_catalog,
)
from bot.i18n.tools import Extraction, extract_keys

LANGS = list(SUPPORTED)


@pytest.fixture(scope="module")
def english() -> ParsedCatalog:
    return read_catalog(catalog_path(LOCALES_DIR, FALLBACK), FALLBACK)


@pytest.fixture(scope="module")
def catalogs(english: ParsedCatalog) -> dict[str, ParsedCatalog]:
    return {
        lang: english
        if lang == FALLBACK
        else read_catalog(catalog_path(LOCALES_DIR, lang), lang, english)
        for lang in LANGS
    }


@pytest.fixture(scope="module")
def used() -> Extraction:
    return extract_keys()


def test_the_extractor_sees_the_code(used: Extraction) -> None:
    # A guard against an extractor that silently finds nothing.
    assert {"enroll.ok", "access.private_only", "error.internal", "code.expired"} <= set(used.keys)
    assert {"help.{}", "role.{}", "lang.name.{}"} <= set(used.families)


def test_every_runtime_built_key_family_is_listed(used: Extraction) -> None:
    assert used.unknown_families == {}, (
        "add these f-string key families to bot.i18n.KEY_FAMILIES: "
        + ", ".join(f"{p} ({places[0]})" for p, places in used.unknown_families.items())
    )


def test_help_and_bot_menu_commands_are_in_the_help_family() -> None:
    from handlers.enrollment import HELP_ORDER

    assert set(HELP_ORDER) <= set(KEY_FAMILIES["help.{}"])
    from bot.delivery.command_menu import ADMINS, GROUP_ADMINS, GROUPS, PRIVATE

    assert {*PRIVATE, *GROUPS, *GROUP_ADMINS, *ADMINS} <= set(KEY_FAMILIES["help.{}"])


def test_families_mirror_the_enums_they_name() -> None:
    from bot.domain import Role, Side
    from translation.types import Route

    assert set(KEY_FAMILIES["relay.route.{}"]) == {route.value for route in Route}
    assert set(KEY_FAMILIES["role.{}"]) == {role.value for role in Role}
    assert set(KEY_FAMILIES["side.{}"]) == {side.value for side in Side}


@pytest.mark.parametrize("lang", LANGS)
def test_every_key_the_code_uses_is_translated(
    lang: str, used: Extraction, catalogs: dict[str, ParsedCatalog]
) -> None:
    entries = catalogs[lang].entries
    missing = sorted(k for k in used.all_keys() if k not in entries or not entries[k].translated)
    assert missing == [], f"{catalogs[lang].path}: missing {missing} (run `daraja i18n update`)"


@pytest.mark.parametrize("lang", LANGS)
def test_keys_used_with_tn_have_plural_forms(
    lang: str, used: Extraction, catalogs: dict[str, ParsedCatalog]
) -> None:
    entries = catalogs[lang].entries
    for key, use in used.keys.items():
        if use.plural and key in entries:
            assert entries[key].plural, f"{key} is used with tn() but has no msgid_plural"


@pytest.mark.parametrize("lang", LANGS)
def test_every_catalog_holds_every_english_key(
    lang: str, english: ParsedCatalog, catalogs: dict[str, ParsedCatalog]
) -> None:
    entries = catalogs[lang].entries
    missing = sorted(k for k in english.entries if k not in entries or not entries[k].translated)
    assert missing == []
    extra = sorted(k for k in entries if k not in english.entries)
    assert extra == [], "keys without English text"


@pytest.mark.parametrize("lang", LANGS)
def test_placeholders_html_and_plural_counts(
    lang: str, english: ParsedCatalog, catalogs: dict[str, ParsedCatalog]
) -> None:
    problems = entry_problems(catalogs[lang], english)
    assert [str(p) for p in problems] == []


@pytest.mark.parametrize("lang", ["ht", "fr", "sw"])
def test_placeholder_sets_equal_englishs(
    lang: str, english: ParsedCatalog, catalogs: dict[str, ParsedCatalog]
) -> None:
    # Stated directly too: every form has English's {names}; a plural form may omit {n}.
    def names(text: str | tuple[str, ...]) -> list[frozenset[str]]:
        return [placeholders(form) for form in (text if isinstance(text, tuple) else (text,))]

    for key, entry in catalogs[lang].entries.items():
        wanted = frozenset().union(*names(english.entries[key].text))
        for found in names(entry.text):
            if entry.plural:
                assert found - {"n"} == wanted - {"n"}, f"{lang} {key}"
            else:
                assert found == wanted, f"{lang} {key}"


@pytest.mark.parametrize("lang", LANGS)
def test_headers_language_and_plural_forms(lang: str, catalogs: dict[str, ParsedCatalog]) -> None:
    assert [str(p) for p in header_problems(catalogs[lang])] == []
    assert (catalogs[lang].nplurals, catalogs[lang].plural_expr) == PLURAL_FORMS[lang]


@pytest.mark.parametrize("lang", LANGS)
def test_plural_entries_have_nplurals_forms(lang: str, catalogs: dict[str, ParsedCatalog]) -> None:
    expected = {"ht": 1, "fr": 2, "en": 2, "sw": 2}[lang]
    plural = [e for e in catalogs[lang].entries.values() if e.plural]
    assert {"time.minutes_ago", "time.hours_ago", "board.units_count"} <= {e.key for e in plural}
    for entry in plural:
        assert isinstance(entry.text, tuple), entry.key
        assert len(entry.text) == expected, entry.key


@pytest.mark.parametrize("lang", LANGS)
def test_babel_reads_strictly_and_compiles_including_fuzzy(lang: str) -> None:
    from babel.messages.mofile import read_mo, write_mo
    from babel.messages.pofile import read_po

    with catalog_path(LOCALES_DIR, lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, abort_invalid=True)
    assert not catalog.fuzzy
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=True)
    buffer.seek(0)
    compiled = read_mo(buffer)
    assert compiled.get("board.unit") is not None
    assert len(compiled) >= len([m for m in catalog if m.id])


NEW_KEYS = (
    [f"status.{s}" for s in KEY_FAMILIES["status.{}"]]
    + [
        f"board.{k}"
        for k in [
            "title",
            "unit",
            "side",
            "status",
            "location",
            "strength",
            "needs",
            "last_report",
            "stale",
            "no_report",
            "page",
            "units_count",
        ]
    ]
    + [
        f"relay.{k}"
        for k in [
            "warning_low_confidence",
            "warning_span_repaired",
            "original",
            "translated_from",
            "route.direct",
            "route.multilingual",
            "route.pivot",
            "not_relayed_kind",
            "possible_duplicate",
        ]
    ]
    + [f"flash.{k}" for k in ["label", "ack_button", "acked", "reminder", "escalation", "usage"]]
    + [f"audit.{k}" for k in ["usage_log", "usage_search", "no_results", "page"]]
    + ["time.minutes_ago", "time.hours_ago", "time.days_ago", "time.just_now"]
    + list(family_keys("relay.kind.{}"))
)


@pytest.mark.parametrize("lang", LANGS)
def test_strings_for_coming_features_are_ready(
    lang: str, catalogs: dict[str, ParsedCatalog]
) -> None:
    entries = catalogs[lang].entries
    missing = [k for k in NEW_KEYS if k not in entries or not entries[k].translated]
    assert missing == []


def test_translations_are_not_copies_of_english(
    english: ParsedCatalog, catalogs: dict[str, ParsedCatalog]
) -> None:
    # Same as English only for prowords, acronyms and words both languages share.
    allowed = {"side.PNH", "side.MSS", "flash.label", "relay.kind.animation"}
    shared = {"fr": {"board.side", "relay.original"}, "ht": set(), "sw": set()}
    for lang in ("ht", "fr", "sw"):
        copies = {
            key
            for key, entry in catalogs[lang].entries.items()
            if entry.text == english.entries[key].text and key not in allowed
        }
        assert copies == shared[lang], lang


# Operational vocabulary: wherever English says the term, the catalog uses the table's word.
VOCABULARY = {
    "unit": {"ht": ("inite",), "fr": ("unité",), "sw": ("kikosi", "vikosi")},
    "operation": {"ht": ("operasyon",), "fr": ("opération",), "sw": ("operesheni",)},
    "commander": {"ht": ("kòmandan",), "fr": ("commandant",), "sw": ("kamanda", "makamanda")},
}


# Texts that quote command arguments, which stay English ("officer, commander or auditor").
LITERAL_ARGUMENTS = {"error.bad_role"}


@pytest.mark.parametrize("lang", ["ht", "fr", "sw"])
def test_catalogs_use_the_terminology(
    lang: str, english: ParsedCatalog, catalogs: dict[str, ParsedCatalog]
) -> None:
    from bot.i18n.terminology import load_terminology

    table = {row["id"]: row for row in load_terminology()}
    for term, by_lang in VOCABULARY.items():
        words = by_lang[lang]
        assert table[term]["variants"][lang][0] in words  # the table and this test agree
        for key, ref in english.entries.items():
            text = " ".join(ref.text) if isinstance(ref.text, tuple) else ref.text
            text = re.sub(r"\{[a-z_]+\}", "", text)  # {unit} is a value, not the word
            if key in LITERAL_ARGUMENTS or not re.search(rf"\b{term}s?\b", text, re.I):
                continue
            entry = catalogs[lang].entries[key]
            mine = (" ".join(entry.text) if isinstance(entry.text, tuple) else entry.text).lower()
            assert any(word in mine for word in words), f"{lang} {key}: {mine!r} lacks {words}"


def test_fuzzy_entries_exist_only_where_review_is_pending(
    catalogs: dict[str, ParsedCatalog],
) -> None:
    # English is the source text: never fuzzy. Others flag what a native speaker must check.
    assert not [e.key for e in catalogs["en"].entries.values() if e.fuzzy]
    assert [e.key for e in catalogs["ht"].entries.values() if e.fuzzy]


def test_catalog_files_are_the_only_po_sources() -> None:
    found = sorted(p.relative_to(LOCALES_DIR) for p in LOCALES_DIR.rglob("*.po"))
    assert found == [Path(lang, "LC_MESSAGES", "daraja.po") for lang in sorted(LANGS)]
