"""What an officer may type into a SITREP: coordinates, places, strength, status."""

from __future__ import annotations

import pytest

from bot.domain.gazetteer import resolve_place
from bot.errors import UserInputError
from bot.i18n import load_i18n
from bot.services.sitrep import (
    parse_coordinate,
    parse_location,
    parse_one_line,
    parse_status,
    parse_strength,
)

GLOSSARY = {"Route de Frères": {}, "PNH": {}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18.5392,-72.3364", (18.5392, -72.3364)),
        ("18.5392, -72.3364", (18.5392, -72.3364)),
        ("18.5392 -72.3364", (18.5392, -72.3364)),
        ("18,5392 -72,3364", (18.5392, -72.3364)),  # French decimal commas
        ("18,5392;-72,3364", (18.5392, -72.3364)),
        ("Kenscoff", None),
    ],
)
def test_coordinates_typed_in_the_field(text: str, expected: object) -> None:
    assert parse_coordinate(text) == expected


@pytest.mark.parametrize("text", ["95.0,-72.3", "18.5,-200", "0,0", "-91 10"])
def test_impossible_coordinates_are_refused(text: str) -> None:
    with pytest.raises(UserInputError) as err:
        parse_coordinate(text)
    assert err.value.key == "sitrep.bad_coordinate"


def test_places_are_matched_without_case_or_accents() -> None:
    assert resolve_place("kenscoff", None) == "Kenscoff"
    assert resolve_place("PETION-VILLE", None) == "Pétion-Ville"
    assert resolve_place("croix des bouquets", None) == "Croix-des-Bouquets"
    assert resolve_place("route de freres", GLOSSARY) == "Route de Frères"
    assert resolve_place("PNH", GLOSSARY) is None  # acronyms are not places
    located = parse_location("Furcy", None)
    assert located.place == "Furcy"
    assert located.latitude is not None
    with pytest.raises(UserInputError):
        parse_location("Atlantis", None)


@pytest.mark.parametrize("text", ["-1", "abc", "10001", "3.5"])
def test_bad_strength_is_refused(text: str) -> None:
    with pytest.raises(UserInputError):
        parse_strength(text)


def test_strength_zero_is_allowed() -> None:
    assert parse_strength(" 0 ") == 0


def test_status_by_code_number_or_label_in_any_language() -> None:
    i18n = load_i18n()
    assert parse_status("in_contact") == "in_contact"
    assert parse_status("3") == "in_contact"
    assert parse_status(i18n.t("status.on_patrol", "sw").replace(" ", "_"), i18n) == "on_patrol"
    assert parse_status(i18n.t("status.at_position", "ht").replace(" ", "_"), i18n) == (
        "at_position"
    )
    assert parse_status("8") is None
    assert parse_status("asleep", i18n) is None


def test_one_line_form_and_its_errors() -> None:
    sitrep = parse_one_line("2 Kenscoff 12 water | road blocked at km 4", None)
    assert (sitrep.status, sitrep.location.place, sitrep.strength) == (
        "at_position",
        "Kenscoff",
        12,
    )
    assert (sitrep.needs, sitrep.remarks) == ("water", "road blocked at km 4")
    with pytest.raises(UserInputError) as err:
        parse_one_line("2 Kenscoff", None)
    assert err.value.key == "sitrep.usage"
    with pytest.raises(UserInputError) as err:
        parse_one_line("2 Kenscoff -4", None)
    assert err.value.key == "sitrep.bad_strength"
