"""The domain vocabulary: one list of languages, enums that are their stored strings."""

from __future__ import annotations

from typing import get_args

import translation.types
from bot.domain import (
    LANGUAGES,
    SIDES,
    CodeKind,
    Language,
    LanguageCode,
    MessageKind,
    Side,
    escape_html,
)
from bot.domain.gazetteer import PLACES, known_places, resolve_place


def test_one_list_of_languages_for_settings_the_bot_and_the_engine() -> None:
    assert LANGUAGES == ("ht", "fr", "en", "sw")
    assert get_args(LanguageCode) == LANGUAGES
    # The translation layer may not import bot/, so it keeps its own copy: the same one.
    assert translation.types.LANGUAGES == LANGUAGES
    assert all(type(code) is str for code in LANGUAGES)


def test_enum_members_are_the_strings_stored_in_the_database() -> None:
    assert Language.HT == "ht"
    assert f"{Language.SW}" == "sw"
    assert MessageKind.SITREP == "sitrep"
    assert MessageKind.TRANSCRIPT == "transcript"
    assert {CodeKind.CHAT, CodeKind.PERSON} == {"chat", "person"}
    assert SIDES == tuple(Side) == ("PNH", "MSS")


def test_one_html_escape_leaves_quotes_alone() -> None:
    assert escape_html('<b>"Tom" & Jerry</b>') == '&lt;b&gt;"Tom" &amp; Jerry&lt;/b&gt;'
    assert escape_html(42) == "42"


def test_the_gazetteer_places_have_points_and_the_glossary_adds_names() -> None:
    assert PLACES["Kenscoff"] == (18.4500, -72.2830)
    assert resolve_place("petion ville", None) == "Pétion-Ville"
    assert known_places({"Route de Frères": {}, "PNH": {}})[-1] == "Route de Frères"
