"""Quality flags: each failure a small model makes is flagged; clean translations are not."""

from __future__ import annotations

import pytest

from translation.quality import flags_for
from translation.spans import Glossary
from translation.types import Flag

GLOSSARY = Glossary.from_mapping(["Kenscoff", "Furcy", "Croix-des-Bouquets", "PNH", "MSS"])


def _flags(
    source: str, output: str, src: str = "ht", tgt: str = "en", score: float | None = 0.8
) -> tuple[Flag, ...]:
    return flags_for(
        source, output, source_lang=src, target_lang=tgt, score=score, glossary=GLOSSARY
    )


CLEAN = [
    (
        "ht",
        "en",
        "Inite KE-3 rive Kenscoff 14:30, bezwen ranfò",
        "Unit KE-3 arrived in Kenscoff at 14:30, needs backup",
    ),
    (
        "en",
        "fr",
        "Unit 3 at grid 18.5392,-72.3364, 2 wounded, need medevac",
        "Unité 3 au point 18.5392,-72.3364, 2 blessés, besoin d'une évacuation sanitaire",
    ),
    ("en", "sw", "Road blocked near the checkpoint", "Barabara imefungwa karibu na kizuizi"),
    ("sw", "en", "Sawa", "Okay"),
    ("en", "ht", "Copy that", "Mwen resevwa"),
    ("fr", "en", "Bien reçu", "Received"),
    ("en", "fr", "Roger", "Bien reçu, compris"),
    ("fr", "en", "Position confirmée", "Position confirmed"),
    ("en", "sw", "Two suspects detained", "Washukiwa wawili wamekamatwa"),
    (
        "ht",
        "fr",
        "Nou bezwen dlo ak manje pou 12 moun",
        "Nous avons besoin d'eau et de nourriture pour 12 personnes",
    ),
    ("sw", "ht", "Tumepoteza mawasiliano na KE-3", "Nou pèdi kontak ak KE-3"),
    ("en", "fr", "KE-3 14:30 Kenscoff", "KE-3 14:30 Kenscoff"),  # nothing to translate
    ("en", "fr", "OK", "OK"),
    (
        "en",
        "sw",
        "Alpha Alpha Alpha Alpha, this is Bravo",
        "Alpha Alpha Alpha Alpha, hapa ni Bravo",
    ),
    ("fr", "en", "Mission terminée", "Mission complete"),
]


@pytest.mark.parametrize(("src", "tgt", "source", "output"), CLEAN)
def test_clean_translations_get_no_flags(src: str, tgt: str, source: str, output: str) -> None:
    assert _flags(source, output, src, tgt) == ()


@pytest.mark.parametrize("output", ["", "   ", "\n"])
def test_empty_output_is_flagged(output: str) -> None:
    assert _flags("Nou bezwen ranfò", output) == (Flag.EMPTY,)


def test_empty_source_and_output_is_not_a_failure() -> None:
    assert _flags("  ", "") == ()


def test_hallucinated_continuation_is_too_long() -> None:
    output = (
        "We arrived. The situation in the area is under control and all the units are in "
        "position waiting for further orders from the command centre in the capital city."
    )
    assert Flag.TOO_LONG in _flags("Nou rive.", output)


def test_dropped_clause_is_too_short() -> None:
    source = (
        "Bandi yo bloke wout Kenscoff la depi maten, gen 2 blese nan mitan lari a, "
        "nou bezwen yon anbilans ak ranfò kounye a"
    )
    assert Flag.TOO_SHORT in _flags(source, "Bandits blocked the road.")


def test_short_replies_have_room_in_both_directions() -> None:
    assert _flags("Wi", "Yes, commander") == ()
    assert _flags("Nou resevwa mesaj la", "Copy") == ()


@pytest.mark.parametrize(
    "output",
    [
        "Unit KE-3 arrived arrived arrived arrived in Kenscoff",
        "We need backup we need backup we need backup we need backup",
        "Send ambulance, send ambulance, send ambulance, send ambulance",
    ],
)
def test_repetition_loops_are_flagged(output: str) -> None:
    assert Flag.REPEATED in _flags("Inite KE-3 rive Kenscoff, bezwen ranfò, voye anbilans", output)


def test_repetition_written_by_the_author_is_not_the_models_fault() -> None:
    source = "Mayday mayday mayday mayday, nou anba tire"
    assert Flag.REPEATED not in _flags(source, "Mayday mayday mayday mayday, we are under fire")


@pytest.mark.parametrize(
    ("source", "output"),
    [
        ("Bandi yo ap tire sou nou", "Bandi yo ap tire sou nou"),
        ("Bandi yo ap tire sou nou", "bandi yo ap tire sou nou."),
        ("Inite KE-3 rive Kenscoff 14:30", "Inite KE-3 rive Kenscoff 14h30"),  # spans differ
        ("Nou bezwen ranfò nan Furcy kounye a", "Nou bezwen ranfò nan Furcy kounye a, over"),
    ],
)
def test_untranslated_passthrough_is_flagged(source: str, output: str) -> None:
    assert Flag.PASSTHROUGH in _flags(source, output, "ht", "en")


def test_same_language_passthrough_is_expected() -> None:
    assert _flags("Bandi yo ap tire sou nou", "Bandi yo ap tire sou nou", "ht", "ht") == ()


@pytest.mark.parametrize(
    ("score", "flagged"), [(0.1, True), (0.34, True), (0.35, False), (0.9, False), (None, False)]
)
def test_low_confidence(score: float | None, flagged: bool) -> None:
    flags = _flags("Nou rive", "We arrived", score=score)
    assert (Flag.LOW_CONFIDENCE in flags) is flagged


def test_threshold_is_configurable() -> None:
    flags = flags_for(
        "Nou rive", "We arrived", source_lang="ht", target_lang="en", score=0.5, low_confidence=0.6
    )
    assert flags == (Flag.LOW_CONFIDENCE,)


def test_several_failures_are_all_reported() -> None:
    flags = _flags("Nou rive.", "Nou rive. " * 10, score=0.05)
    assert set(flags) == {Flag.TOO_LONG, Flag.REPEATED, Flag.PASSTHROUGH, Flag.LOW_CONFIDENCE}


@pytest.mark.parametrize(
    ("source", "output"),
    [
        ("\ud800", "\udfff"),
        ("\x00\x01", "\x1b[31m"),
        ("\u200b\u200d", "\u202e\u200f"),
        ("Nou rive. " * 10_000, "We arrived. " * 10_000),
        ("a" * 100_000, "b" * 100_000),
        ("the " * 25_000, "the " * 25_000),
    ],
)
def test_bad_input_gives_flags_not_errors(source: str, output: str) -> None:
    flags = _flags(source, output)
    assert all(isinstance(f, Flag) for f in flags)
