"""Segmentation: sentences and lines out, translations back in, layout and every byte kept."""

from __future__ import annotations

import random

import pytest

from translation.segment import Segmented, reassemble, segment, segments
from translation.spans import Glossary, find_spans, mask


def _split(text: str, max_chars: int = 400) -> list[str]:
    return segments(segment(text, max_chars=max_chars))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # abbreviations and titles
        ("Sgt. Joseph rive. Nou bezwen ranfò.", ["Sgt. Joseph rive.", "Nou bezwen ranfò."]),
        (
            "Cpt. Otieno and Dr. Baptiste arrived. Moving on.",
            ["Cpt. Otieno and Dr. Baptiste arrived.", "Moving on."],
        ),
        ("Bw. Otieno amefika. Tunaendelea.", ["Bw. Otieno amefika.", "Tunaendelea."]),
        ("Room No. 5 is clear. Next.", ["Room No. 5 is clear.", "Next."]),
        (
            "Water, fuel, rations etc. are low. Send more.",
            ["Water, fuel, rations etc. are low.", "Send more."],
        ),
        ("We need water, fuel etc. Send it now.", ["We need water, fuel etc.", "Send it now."]),
        ("M. Pierre est arrivé. Merci.", ["M. Pierre est arrivé.", "Merci."]),
        ("The U.N. team left. Over.", ["The U.N. team left.", "Over."]),
        # decimals, times, numbers
        ("Distance 3.5 km. Rive 14.30. Pati.", ["Distance 3.5 km.", "Rive 14.30.", "Pati."]),
        ("Saa 14:30. Tumefika.", ["Saa 14:30.", "Tumefika."]),
        # ellipses and ?!
        ("Nou la… n ap tann. Oke.", ["Nou la… n ap tann.", "Oke."]),
        ("We wait... Then we move.", ["We wait...", "Then we move."]),
        ("Kisa?! Repete.", ["Kisa?!", "Repete."]),
        ("Where are you?? Answer!", ["Where are you??", "Answer!"]),
        # French spacing and quotes
        ("Quelle est votre position ? Répondez !", ["Quelle est votre position ?", "Répondez !"]),
        ("Il a dit « Nous arrivons. » Merci.", ["Il a dit « Nous arrivons. »", "Merci."]),
        ('He said "Hold." Then left.', ['He said "Hold."', "Then left."]),
        # Kreyòl without capitals still splits at a period
        ("nou rive. n ap tann lòd.", ["nou rive.", "n ap tann lòd."]),
        # Kreyòl "gen" at a sentence end is not the rank "Gen."
        ("Pa gen. Voye plis.", ["Pa gen.", "Voye plis."]),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert _split(text) == expected
    s = segment(text)
    assert reassemble(s, segments(s)) == text


def test_layout_is_kept_and_only_words_are_translated() -> None:
    text = "  SITREP KE-3\n- Nou rive Kenscoff.\n• 2 blese\n  1. Voye anbilans\n\n🚨🚨\n14:30\n"
    s = segment(text)
    assert segments(s) == ["SITREP KE-3", "Nou rive Kenscoff.", "2 blese", "Voye anbilans"]
    translated = ["SITREP KE-3", "We reached Kenscoff.", "2 wounded", "Send an ambulance"]
    assert reassemble(s, translated) == (
        "  SITREP KE-3\n- We reached Kenscoff.\n• 2 wounded\n"
        "  1. Send an ambulance\n\n🚨🚨\n14:30\n"
    )


def test_windows_and_unicode_line_breaks_are_kept() -> None:
    text = "Nou rive.\r\nN ap tann.\u2028Oke\n"
    s = segment(text)
    assert segments(s) == ["Nou rive.", "N ap tann.", "Oke"]
    assert reassemble(s, ["A.", "B.", "C"]) == "A.\r\nB.\u2028C\n"


def test_over_long_sentence_is_split_at_commas_then_spaces_never_truncated() -> None:
    text = "Nou rive nan pozisyon an, " * 20 + "nou bezwen ranfò kounye a"
    parts = _split(text, max_chars=100)
    assert all(len(p) <= 100 for p in parts)
    assert all(p.endswith(",") for p in parts[:-1])
    s = segment(text, max_chars=100)
    assert reassemble(s, segments(s)) == text

    words = "ranfò " * 100
    parts = _split(words.strip(), max_chars=50)
    assert all(len(p) <= 50 and not p.startswith(" ") and not p.endswith(" ") for p in parts)
    assert " ".join(parts) == words.strip()


def test_a_single_enormous_word_is_cut_but_kept_whole() -> None:
    text = "x" * 1000
    parts = _split(text, max_chars=400)
    assert [len(p) for p in parts] == [400, 400, 200]
    assert "".join(parts) == text


def test_masked_text_is_never_cut_inside_a_placeholder() -> None:
    text = "Unit KE-3 at 18.5392, -72.3364 with +509 3712 3456, " * 30
    m = mask(text, find_spans(text))
    s = segment(m.text, max_chars=60)
    for part in segments(s):
        assert part.count("[") == part.count("]")
    assert reassemble(s, segments(s)) == m.text


def test_over_long_sentences_are_not_cut_inside_spans() -> None:
    glossary = Glossary.from_mapping(["Cité Soleil"])
    text = "Unit at 18.5392, -72.3364 near Cité Soleil, call +509 3712 3456, " * 12
    spans = find_spans(text, glossary)
    for max_chars in (20, 30, 45, 60, 100):
        s = segment(text, max_chars=max_chars, glossary=glossary)
        boundaries, pos = set(), 0
        for piece in s.pieces:
            pos += len(piece.text)
            boundaries.add(pos)
        cut = [sp.text for sp in spans if any(sp.start < b < sp.end for b in boundaries)]
        assert cut == [], max_chars
        assert all(len(p) <= max_chars for p in segments(s))


def test_reassemble_refuses_the_wrong_number_of_translations() -> None:
    s = segment("Nou rive. Nou pati.")
    with pytest.raises(ValueError, match="expected 2"):
        reassemble(s, ["one"])


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        segment("Nou rive", max_chars=0)


# --- nothing is ever dropped: property test over random text ----------------------------------

_ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZòèéàçÀ0123456789")
    + list(" " * 12 + "\n" * 4 + "\t\r")
    + list(".!?…,;:-•*\"'«»()[]")
    + [" ?", "...", "1. ", "- ", "Sgt.", "No. ", "3.5", "14:30"]
    + ["🚨", "👍🏽", "👮🏾\u200d♂️", "🇭🇹", "1️⃣"]
    + ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]  # zero-width
    + ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202e", "\u2066", "\u2069"]  # bidi
    + [
        "مرحبا",
        "שלום",
        "\u00a0",
        "\u202f",
        "\u2028",
        "\u2029",
        "\x0b",
        "\x0c",
        "\x85",
        "\x00",
        "\x1b",
    ]
    + ["\ud800", "\udfff"]  # lone surrogates
)


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 120)))


def _check_invariants(text: str, s: Segmented, max_chars: int) -> None:
    assert reassemble(s, segments(s)) == text
    assert s.text == text
    for piece in s.pieces:
        assert piece.text
        if piece.translate:
            assert len(piece.text) <= max_chars
            assert piece.text == piece.text.strip()
            assert any(ch.isalpha() for ch in piece.text)


def test_reassembling_untranslated_segments_gives_the_text_back_for_random_text() -> None:
    rng = random.Random(4)
    for _ in range(2000):
        text = _random_text(rng)
        max_chars = rng.choice([1, 5, 20, 400])
        _check_invariants(text, segment(text, max_chars=max_chars), max_chars)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n\n",
        "\ud800",
        ".",
        "...",
        "?!",
        "- ",
        "1. ",
        "\u200b\u200d",
        "Nou rive. " * 10_000,
        "a" * 100_000,
        "." * 100_000,
        "a." * 50_000,
        "\n" * 100_000,
        "Sgt. " * 20_000,
        ", " * 50_000,
    ],
)
def test_bad_and_huge_input(text: str) -> None:
    _check_invariants(text, segment(text), 400)
