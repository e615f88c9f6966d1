"""`daraja i18n`: key extraction, catalog update, compile and the status report."""

from __future__ import annotations

import gettext
import json
import shutil
import textwrap
from pathlib import Path

import pytest

from bot.cli import main
from bot.i18n import LOCALES_DIR, load_i18n
from bot.i18n.catalogs import catalog_path, read_catalog
from bot.i18n.tools import compile_catalogs, extract_keys, status, update_catalogs

SOURCE = """
from bot.errors import UserInputError

class Refused(Exception):
    key = "demo.refused"

class Typed(Exception):
    key: str = "demo.typed"

async def handler(update, ctx, lang, who, n):
    await answer(update, ctx, "demo.answer", lang, name=who)
    label = text(ctx, "demo.text", lang)
    plural = ctx.services.i18n.tn("demo.count", lang, n)
    menu = ctx.services.i18n.t(f"help.{who}", "en")
    other = text(ctx, f"demo.family.{who}", lang)
    flag = answer(update, ctx, "demo.yes" if n else "demo.no", lang)
    sorted([3, 1], key=len)
    WARNINGS = (("no_model", N_("demo.marked")),)
    log.info("not.a_key %s", t)
    print(t("Not a key", lang))
    raise UserInputError("usage", key="demo.usage", refused="demo.not_a_key_param")
"""


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    root = tmp_path / "locales"
    for lang in ("ht", "fr", "en", "sw"):
        target = catalog_path(root, lang).parent
        target.mkdir(parents=True)
        shutil.copy(catalog_path(LOCALES_DIR, lang), target)
    return root


def test_extractor_finds_literal_keys_errors_plurals_and_families(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "demo.py").write_text(textwrap.dedent(SOURCE), encoding="utf-8")
    found = extract_keys([src], root=tmp_path)
    assert set(found.keys) == {
        "demo.refused",
        "demo.typed",
        "demo.answer",
        "demo.text",
        "demo.count",
        "demo.yes",
        "demo.no",
        "demo.usage",
        "demo.marked",
    }
    assert found.keys["demo.count"].plural
    assert not found.keys["demo.answer"].plural
    assert found.keys["demo.answer"].places == ["src/demo.py:11"]
    assert set(found.families) == {"help.{}", "demo.family.{}"}
    assert set(found.unknown_families) == {"demo.family.{}"}
    assert "help.whoami" in found.all_keys()


def test_update_adds_new_keys_everywhere_and_keeps_translations(locales: Path) -> None:
    found = extract_keys()
    found.add("board.new_label", "bot/x.py:1")
    found.add("time.weeks_ago", "bot/x.py:2", plural=True)
    results = update_catalogs(locales, found)
    assert {r.lang for r in results if r.added == ("board.new_label", "time.weeks_ago")} == {
        "ht",
        "fr",
        "en",
        "sw",
    }
    ht = read_catalog(catalog_path(locales, "ht"), "ht")
    assert ht.entries["board.new_label"].text == ""
    assert ht.entries["time.weeks_ago"].text == ("",)  # Kreyòl: one form
    assert read_catalog(catalog_path(locales, "sw"), "sw").entries["time.weeks_ago"].text == (
        "",
        "",
    )
    # Existing translations, review flags and comments survive.
    assert ht.entries["status.need_support"].text == "bezwen ranfò"
    assert ht.entries["status.in_contact"].fuzzy
    assert '# "nan fiziyad" (in a gunfight)' in catalog_path(locales, "ht").read_text("utf-8")
    # Untranslated keys fall back to English at run time, and status counts them missing.
    assert load_i18n(locales).t("board.new_label", "ht") == "board.new_label"
    report = {item.lang: item for item in status(locales, found)}
    assert report["fr"].missing == 2
    assert "board.new_label" in report["en"].missing_keys


def test_update_is_idempotent_on_the_shipped_catalogs(locales: Path) -> None:
    before = {lang: catalog_path(locales, lang).read_bytes() for lang in ("ht", "fr", "en", "sw")}
    results = update_catalogs(locales)
    assert [r.lang for r in results if r.changed] == []
    after = {lang: catalog_path(locales, lang).read_bytes() for lang in before}
    assert after == before


def test_compile_writes_mo_files_gettext_reads_with_fuzzy_entries(
    locales: Path, tmp_path: Path
) -> None:
    written = compile_catalogs(locales, tmp_path / "build")
    assert len(written) == 4
    ht = gettext.translation("daraja", tmp_path / "build", languages=["ht"])
    assert ht.gettext("status.need_support") == "bezwen ranfò"
    assert ht.gettext("status.in_contact") == "nan fiziyad"  # fuzzy, still compiled
    assert ht.ngettext("time.minutes_ago", "time.minutes_ago", 5) == "sa gen {n} minit"
    fr = gettext.translation("daraja", tmp_path / "build", languages=["fr"])
    assert fr.ngettext("time.minutes_ago", "time.minutes_ago", 0) == "il y a {n} minute"


def test_status_counts_and_lists_fuzzy_strings(locales: Path) -> None:
    report = {item.lang: item for item in status(locales)}
    assert report["en"].fuzzy == 0
    assert report["en"].missing == 0
    assert report["ht"].fuzzy > 0
    assert ("status.in_contact", "nan fiziyad") in report["ht"].fuzzy_entries
    for item in report.values():
        assert item.translated + item.fuzzy + item.missing == item.total


def test_cli_status_json(locales: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["i18n", "--locales", str(locales), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [item["lang"] for item in data] == ["ht", "fr", "en", "sw"]
    sw = data[3]
    assert {"total", "translated", "fuzzy", "missing", "fuzzy_entries"} <= set(sw)
    assert any(key == "status.in_contact" for key, _text in sw["fuzzy_entries"])


def test_cli_status_text_lists_fuzzy(locales: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["i18n", "--locales", str(locales), "status"]) == 0
    out = capsys.readouterr().out
    assert "awaiting native review" in out
    assert "  status.in_contact: nan fiziyad" in out


def test_cli_update_check_reports_out_of_date_catalogs(
    locales: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["i18n", "--locales", str(locales), "update", "--check"]) == 0
    path = catalog_path(locales, "fr")
    text = path.read_text(encoding="utf-8")
    start = text.index('#. English: Unit status board\nmsgid "board.title"')
    end = text.index("\n\n", start)
    path.write_text(text[:start] + text[end + 2 :], encoding="utf-8")
    capsys.readouterr()
    assert main(["i18n", "--locales", str(locales), "update", "--check"]) == 1
    assert "+ board.title" in capsys.readouterr().out
    assert "board.title" not in read_catalog(path, "fr").entries  # --check wrote nothing


def test_cli_broken_catalog_is_one_line_exit_2(
    locales: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalog_path(locales, "sw")
    path.write_text(path.read_text("utf-8").replace('msgstr "Kikosi"', 'msgstr "Kikosi'), "utf-8")
    assert main(["i18n", "--locales", str(locales), "compile"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert f"{path}:" in err
    assert "unterminated string" in err


def test_cli_extract_writes_a_template(tmp_path: Path) -> None:
    target = tmp_path / "daraja.pot"
    assert main(["i18n", "extract", "--output", str(target)]) == 0
    pot = target.read_text(encoding="utf-8")
    assert 'msgid "enroll.ok"' in pot
    assert 'msgid_plural "time.minutes_ago"' in pot
    assert "#. English: Unit status board" in pot
