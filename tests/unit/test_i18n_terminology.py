"""The operational terminology table and the glossary data it gives the translation engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.i18n.terminology import TERMINOLOGY_FILE, glossary_mapping, load_terminology


@pytest.fixture(scope="module")
def table() -> dict[str, dict[str, object]]:
    return {row["id"]: row for row in load_terminology()}


def test_at_least_forty_terms_each_in_four_languages(table: dict[str, dict[str, object]]) -> None:
    assert len(table) >= 40
    for row in table.values():
        renderings = row["renderings"]
        assert isinstance(renderings, dict)
        assert set(renderings) == {"ht", "fr", "en", "sw"}
        assert all(renderings.values())


@pytest.mark.parametrize(
    ("term", "en", "ht", "fr", "sw"),
    [
        ("unit", "unit", "inite", "unité", "kikosi"),
        ("reinforcement", "reinforcement", "ranfò", "renfort", "msaada wa ziada"),
        ("wounded", "wounded", "blese", "blessé", "majeruhi"),
        ("police", "police", "polis", "police", "polisi"),
        (
            "haitian_national_police",
            "Haitian National Police",
            "Polis Nasyonal d Ayiti",
            "Police nationale d'Haïti",
            "Polisi wa Kitaifa wa Haiti",
        ),
        ("patrol", "patrol", "patwouy", "patrouille", "doria"),
        ("ammunition", "ammunition", "minisyon", "munitions", "risasi"),
        ("vehicle", "vehicle", "machin", "véhicule", "gari"),
    ],
)
def test_key_terms_use_pnh_and_kenya_police_words(
    table: dict[str, dict[str, object]], term: str, en: str, ht: str, fr: str, sw: str
) -> None:
    assert table[term]["renderings"] == {"en": en, "ht": ht, "fr": fr, "sw": sw}


def test_operational_terms_are_all_there(table: dict[str, dict[str, object]]) -> None:
    for term in (
        "checkpoint",
        "gang",
        "roadblock",
        "ambush",
        "evacuation",
        "medevac",
        "medical_evacuation",
        "commander",
        "convoy",
        "casualties",
    ):
        assert term in table


def test_glossary_forces_only_names_and_acronyms() -> None:
    glossary = glossary_mapping()
    assert glossary["Polis Nasyonal d Ayiti"]["sw"] == "Polisi wa Kitaifa wa Haiti"
    assert glossary["Haitian National Police"]["ht"] == "Polis Nasyonal d Ayiti"
    assert glossary["PNH"] == {"en": "PNH", "ht": "PNH", "fr": "PNH", "sw": "PNH"}
    assert "kikosi" not in glossary  # inflecting nouns are reference only
    assert "blese" not in glossary


def test_every_surface_form_has_one_meaning() -> None:
    everything = glossary_mapping(uses=frozenset({"fixed", "reference"}))
    assert everything["blessé"]["sw"] == "majeruhi"
    assert everything["vikosi"]["en"] == "unit"


def _write(tmp_path: Path, *rows: str) -> Path:
    header = TERMINOLOGY_FILE.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "terminology.tsv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_missing_rendering_names_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "unit\treference\tunit\tinite\tunité\tkikosi\t\t",
        "gang\treference\tgang\tgang\tgang\t\t\t",
    )
    with pytest.raises(ConfigError, match=rf"{path}:3: 'gang' has no sw rendering"):
        load_terminology(path)


def test_duplicate_id_and_bad_columns_are_refused(tmp_path: Path) -> None:
    row = "unit\treference\tunit\tinite\tunité\tkikosi\t\t"
    with pytest.raises(ConfigError, match="already used at line 2"):
        load_terminology(_write(tmp_path, row, row))
    with pytest.raises(ConfigError, match=r":2: 3 columns, expected 8"):
        load_terminology(_write(tmp_path, "unit\tunit\tinite"))


def test_conflicting_renderings_are_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "a\tfixed\tBase\tBaz\tBase\tKambi\t\t",
        "b\tfixed\tBase\tBaz\tBase\tKituo\t\t",
    )
    with pytest.raises(
        ConfigError, match="'Baz' is in rows 'a' and 'b' with different renderings"
    ):
        glossary_mapping(load_terminology(path))
