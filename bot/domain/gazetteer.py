"""The mission's gazetteer: the places a SITREP may name, with approximate coordinates, and how
a place typed any way (`kenscoff`, `Petion-ville`) is matched to its canonical spelling.

An operation's glossary (a mapping of term -> renderings by language, or a list of terms) adds
names without coordinates, and fixes how a name is written in each language.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

# point on `/where`. An operation's glossary adds names (without coordinates).
PLACES: dict[str, tuple[float, float]] = {
    "Port-au-Prince": (18.5392, -72.3364),
    "Croix-des-Bouquets": (18.5770, -72.2260),
    "Cité Soleil": (18.5800, -72.3300),
    "Pétion-Ville": (18.5125, -72.2853),
    "Kenscoff": (18.4500, -72.2830),
    "Furcy": (18.4150, -72.2880),
    "Artibonite": (19.2500, -72.5000),
    "Delmas": (18.5500, -72.3000),
    "Tabarre": (18.5800, -72.2700),
    "Martissant": (18.5300, -72.3600),
    "Gonaïves": (19.4470, -72.6890),
    "Saint-Marc": (19.1080, -72.6940),
    "Cap-Haïtien": (19.7570, -72.2040),
    "Carrefour": (18.5410, -72.3990),
    "Cabaret": (18.7350, -72.4190),
    "Mirebalais": (18.8340, -72.1050),
}


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching names typed in the field."""
    nfkd = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in nfkd if not unicodedata.combining(c)).replace("_", " ")


def glossary_places(glossary: Any) -> list[str]:
    """Place and term names from an operation's glossary (a mapping or a list of terms)."""
    if isinstance(glossary, Mapping):
        return [str(k) for k in glossary]
    if isinstance(glossary, list):
        return [str(k) for k in glossary if isinstance(k, str)]
    return []


def known_places(glossary: Any) -> list[str]:
    """Places a SITREP may name: the mission's gazetteer plus the operation's glossary."""
    names = list(PLACES)
    for name in glossary_places(glossary):
        if name not in names and name.upper() != name:  # skip acronyms such as PNH
            names.append(name)
    return names


def resolve_place(text: str, glossary: Any) -> str | None:
    """The canonical spelling of a known place typed any way (`kenscoff`, `Petion-ville`)."""
    wanted = fold(text).replace(" ", "-")
    for name in known_places(glossary):
        if fold(name).replace(" ", "-") == wanted:
            return name
    return None


def glossary_renderings(glossary: Any) -> dict[str, dict[str, str]]:
    """Fixed renderings of glossary terms by language, e.g. Port-au-Prince -> ht Pòtoprens."""
    if not isinstance(glossary, Mapping):
        return {}
    return {
        str(term): {str(k): str(v) for k, v in value.items()}
        for term, value in glossary.items()
        if isinstance(value, Mapping)
    }
