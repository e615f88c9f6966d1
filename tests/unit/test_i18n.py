"""Interface text at run time: lookups, plurals, fallbacks, choice of language, broken catalogs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.i18n import LOCALES_DIR, I18n, choose_language, load_i18n


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    """A writable copy of the real catalogs."""
    root = tmp_path / "locales"
    for lang in ("ht", "fr", "en", "sw"):
        target = root / lang / "LC_MESSAGES"
        target.mkdir(parents=True)
        shutil.copy(LOCALES_DIR / lang / "LC_MESSAGES" / "daraja.po", target / "daraja.po")
    return root


def _po(root: Path, lang: str) -> Path:
    return root / lang / "LC_MESSAGES" / "daraja.po"


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_each_side_reads_its_own_language(i18n: I18n) -> None:
    assert "Polis Nasyonal d Ayiti" in i18n.t("start.welcome", "ht")
    assert "PNH" in i18n.t("start.welcome", "fr")
    assert "unités" in i18n.t("start.welcome", "fr")
    assert "vikosi" in i18n.t("start.welcome", "sw")
    assert i18n.t("status.need_support", "ht") == "bezwen ranfò"
    assert i18n.t("status.casualties", "ht") == "gen blese"
    assert i18n.t("status.casualties", "sw") == "kuna majeruhi"
    assert "msaada" in i18n.t("status.need_support", "sw")


def test_placeholders_are_filled(i18n: I18n) -> None:
    text = i18n.t("flash.acked", "sw", name="Otieno", unit="KE-3", time="14:05")
    assert text == "Imethibitishwa na Otieno (KE-3) saa 14:05"
    assert i18n.t("board.page", "ht", page=2, pages=5) == "paj 2 sou 5"


@pytest.mark.parametrize(
    ("lang", "n", "expected"),
    [
        ("en", 1, "1 minute ago"),
        ("en", 12, "12 minutes ago"),
        ("fr", 1, "il y a 1 minute"),
        ("fr", 12, "il y a 12 minutes"),
        ("ht", 1, "sa gen 1 minit"),
        ("ht", 12, "sa gen 12 minit"),
        ("sw", 1, "dakika 1 iliyopita"),
        ("sw", 12, "dakika 12 zilizopita"),
    ],
)
def test_plural_forms_follow_each_language(i18n: I18n, lang: str, n: int, expected: str) -> None:
    assert i18n.tn("time.minutes_ago", lang, n) == expected


def test_french_treats_zero_as_singular_and_swahili_changes_the_noun_class(i18n: I18n) -> None:
    assert i18n.tn("board.units_count", "fr", 0) == "0 unité"
    assert i18n.tn("board.units_count", "en", 0) == "0 units"
    assert i18n.tn("board.units_count", "sw", 1) == "kikosi 1"
    assert i18n.tn("board.units_count", "sw", 4) == "vikosi 4"


def test_english_fallback_uses_englishs_plural_rule(locales: Path) -> None:
    # Kreyòl has one form; a key missing in Kreyòl must still read "12 minutes" in English.
    path = _po(locales, "ht")
    text = path.read_text(encoding="utf-8")
    text = text.replace('msgstr[0] "sa gen {n} minit"', 'msgstr[0] ""')
    path.write_text(text, encoding="utf-8")
    loaded = load_i18n(locales)
    assert loaded.tn("time.minutes_ago", "ht", 12) == "12 minutes ago"
    assert loaded.tn("time.minutes_ago", "ht", 1) == "1 minute ago"


def test_unknown_language_and_unknown_key_fall_back(i18n: I18n) -> None:
    assert i18n.t("board.title", "de") == i18n.t("board.title", "en")
    assert i18n.t("board.title", None) == "Unit status board"
    assert i18n.t("no.such_key", "ht") == "no.such_key"


def test_unsupported_language_is_explained_in_the_readers_language(i18n: I18n) -> None:
    # What /lang xx answers (the service raises lang.unsupported with lang=xx).
    assert i18n.t("lang.unsupported", "ht", lang="xx").startswith('Lang "xx" pa disponib')
    assert i18n.t("lang.unsupported", "sw", lang="xx").startswith('Lugha "xx" haitumiki')
    assert "« xx »" in i18n.t("lang.unsupported", "fr", lang="xx")


def test_fuzzy_entries_are_used_at_run_time(i18n: I18n) -> None:
    # Awaiting a native speaker's review, but still better than English for the reader.
    fuzzy_line = _line_of(_po(LOCALES_DIR, "ht"), 'msgid "status.in_contact"')
    lines = _po(LOCALES_DIR, "ht").read_text(encoding="utf-8").splitlines()
    assert "#, fuzzy" in lines[fuzzy_line - 2]
    assert i18n.t("status.in_contact", "ht") == "nan fiziyad"


class TestChooseLanguage:
    def test_group_language_wins_in_groups(self) -> None:
        chosen = choose_language(
            chat_languages=["sw", "en"],
            person_language="ht",
            operation_language="fr",
            telegram_language="fr",
        )
        assert chosen == "sw"

    def test_person_language_in_private_chats(self) -> None:
        chosen = choose_language(
            chat_languages=None,
            person_language="ht",
            operation_language="fr",
            telegram_language="en",
        )
        assert chosen == "ht"

    def test_person_without_language_gets_the_operations(self) -> None:
        chosen = choose_language(
            chat_languages=None,
            person_language=None,
            operation_language="fr",
            telegram_language="sw",
        )
        assert chosen == "fr"

    def test_then_the_telegram_app_language_with_region(self) -> None:
        chosen = choose_language(
            chat_languages=[],
            person_language=None,
            operation_language=None,
            telegram_language="fr-CA",
        )
        assert chosen == "fr"

    def test_then_english(self) -> None:
        chosen = choose_language(
            chat_languages=["de"],
            person_language="xx",
            operation_language=None,
            telegram_language="pt-br",
        )
        assert chosen == "en"

    def test_deployment_default_before_english(self) -> None:
        chosen = choose_language(
            chat_languages=None,
            person_language=None,
            operation_language=None,
            telegram_language=None,
            default="ht",
        )
        assert chosen == "ht"


class TestBrokenCatalogs:
    def test_unterminated_string_names_file_and_line(self, locales: Path) -> None:
        path = _po(locales, "fr")
        line = _line_of(path, 'msgstr "Introuvable."')
        text = path.read_text(encoding="utf-8").replace(
            'msgstr "Introuvable."', 'msgstr "Introuvable.'
        )
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_i18n(locales)
        assert f"{path}:{line}: unterminated string" in str(caught.value)

    def test_unbalanced_brace_names_file_and_line(self, locales: Path) -> None:
        path = _po(locales, "sw")
        text = path.read_text(encoding="utf-8").replace('saa {time}"\n', 'saa {time"\n')
        path.write_text(text, encoding="utf-8")
        line = _line_of(path, 'msgid "flash.acked"')
        with pytest.raises(ConfigError) as caught:
            load_i18n(locales)
        message = str(caught.value)
        assert f"{path}:{line}:" in message
        assert "flash.acked" in message

    def test_renamed_placeholder_is_refused(self, locales: Path) -> None:
        path = _po(locales, "ht")
        text = path.read_text(encoding="utf-8").replace("Byenvini, {name}.", "Byenvini, {non}.")
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_i18n(locales)
        assert "'join.ok': {non} not in English's text; {name} missing" in str(caught.value)
        assert "{non}" in str(caught.value)
        assert str(path) in str(caught.value)

    def test_html_telegram_would_reject_is_refused(self, locales: Path) -> None:
        path = _po(locales, "fr")
        text = path.read_text(encoding="utf-8").replace(
            "<b>Commandes Daraja</b>", "<b>Commandes Daraja"
        )
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match="<b> is not closed"):
            load_i18n(locales)

    def test_duplicate_key_is_refused(self, locales: Path) -> None:
        path = _po(locales, "en")
        path.write_text(
            path.read_text(encoding="utf-8") + '\nmsgid "board.unit"\nmsgstr "Unit again"\n',
            encoding="utf-8",
        )
        with pytest.raises(ConfigError, match=r"'board\.unit' already defined at line \d+"):
            load_i18n(locales)

    def test_wrong_number_of_plural_forms_is_refused(self, locales: Path) -> None:
        path = _po(locales, "ht")
        text = path.read_text(encoding="utf-8").replace(
            'msgstr[0] "sa gen {n} jou"', 'msgstr[0] "sa gen {n} jou"\nmsgstr[1] "sa gen {n} jou"'
        )
        path.write_text(text, encoding="utf-8")
        line = _line_of(path, 'msgstr[1] "sa gen {n} jou"')
        with pytest.raises(ConfigError) as caught:
            load_i18n(locales)
        assert f"{path}:{line}: msgstr[1] but the header says nplurals=1" in str(caught.value)

    def test_missing_catalog_is_named(self, locales: Path) -> None:
        _po(locales, "sw").unlink()
        with pytest.raises(
            ConfigError, match=r"sw/LC_MESSAGES/daraja.po: catalog file is missing"
        ):
            load_i18n(locales)

    def test_invalid_utf8_names_the_line(self, locales: Path) -> None:
        path = _po(locales, "ht")
        data = path.read_bytes().replace(b"Inite", b"In\xffte", 1)
        path.write_bytes(data)
        with pytest.raises(ConfigError, match="not valid UTF-8"):
            load_i18n(locales)
