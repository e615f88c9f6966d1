"""The baseline glossary of the Haiti mission: place names and acronyms kept verbatim.

Each operation can extend or override it (``Glossary.from_json``); this default is what the
engine protects when an operation has no glossary of its own, and what language detection
ignores (a place name says nothing about the language it is written in).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from translation.spans import Glossary

# Kept verbatim in every language: renaming a place or a unit in an order is worse than
# leaving it untranslated.
DEFAULT_TERMS: tuple[str, ...] = (
    # places
    "Port-au-Prince",
    "Croix-des-Bouquets",
    "Cité Soleil",
    "Pétion-Ville",
    "Kenscoff",
    "Furcy",
    "Artibonite",
    "Delmas",
    "Tabarre",
    "Martissant",
    "Gonaïves",
    "Saint-Marc",
    "Cap-Haïtien",
    "Haïti",
    "Haiti",
    "Ayiti",
    "Kenya",
    "Nairobi",
    # institutions and acronyms
    "PNH",
    "MSS",
    "UDMO",
    "BOID",
    "CIMO",
    "SWAT",
    "RNDDH",
    "BINUH",
    "ONU",
)


@cache
def default_glossary() -> Glossary:
    """The baseline glossary (immutable, built once)."""
    return Glossary.from_mapping(DEFAULT_TERMS)


def merged(base: Glossary, extra: Mapping[str, Mapping[str, str] | None]) -> Glossary:
    """``base`` with ``extra`` entries added; an extra entry replaces a base entry's renderings."""
    entries = {e.term: dict(e.renderings) for e in base.entries}
    for term, renderings in extra.items():
        entries[term] = dict(renderings or {})
    return Glossary.from_mapping(entries)
