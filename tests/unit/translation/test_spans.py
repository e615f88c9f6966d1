"""Protected spans: detection on the span corpus, masking, and every way a model can break it."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from translation.glossary import default_glossary
from translation.spans import (
    Glossary,
    Masked,
    Span,
    find_spans,
    join_pieces,
    mask,
    number_globally,
    number_locally,
    split_around_spans,
    texts_to_translate,
    unmask,
)

DATA = Path(__file__).resolve().parents[2] / "data"
GLOSSARY = Glossary.from_json(DATA / "span_glossary.json")


def _corpus() -> list[dict[str, Any]]:
    lines = (DATA / "span_corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


CORPUS = _corpus()


def test_corpus_covers_four_languages_with_200_messages() -> None:
    by_lang = Counter(row["lang"] for row in CORPUS)
    assert len(CORPUS) >= 200
    assert set(by_lang) == {"ht", "fr", "en", "sw"}
    assert min(by_lang.values()) >= 50


def test_detection_finds_exactly_the_expected_spans_in_the_corpus() -> None:
    wrong = []
    for row in CORPUS:
        got = [s.text for s in find_spans(row["text"], GLOSSARY)]
        if got != row["spans"]:
            wrong.append(f"{row['text']!r}: expected {row['spans']}, got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Gen 2 blese, 14 moun, 3.5 km, 1,200 katouch", ["2", "14", "3.5", "1,200"]),
        ("Rive 14:30, pati 2h30, retounen 14h30", ["14:30", "2h30", "14h30"]),
        ("Le 26/11/2026 ou 2026-11-26", ["26/11/2026", "2026-11-26"]),
        ("At 18.5392,-72.3364 and 18.5392, -72.3364", ["18.5392,-72.3364", "18.5392, -72.3364"]),
        ("Grid 18Q TA 12345 67890 / 18QTA1234567890", ["18Q TA 12345 67890", "18QTA1234567890"]),
        (
            "KE-3, PNH-UDMO-2, Alpha_2, BRAVO-1, MSS-KE-12",
            ["KE-3", "PNH-UDMO-2", "Alpha_2", "BRAVO-1", "MSS-KE-12"],
        ),
        ("cc @ops_center #SITREP", ["@ops_center", "#SITREP"]),
        (
            "https://maps.example.org/p?q=1 and ops@mss.org",
            ["https://maps.example.org/p?q=1", "ops@mss.org"],
        ),
        ("Rele +509 3712 3456 oswa +254 712 345 678", ["+509 3712 3456", "+254 712 345 678"]),
        ("Nou rive 👍🏽 👮🏾‍♂️ 🇭🇹", ["👍🏽", "👮🏾\u200d♂️", "🇭🇹"]),
        ("Wout Kenscoff, Furcy, Croix-des-Bouquets", ["Kenscoff", "Furcy", "Croix-des-Bouquets"]),
        ("Gade [3] ak [ 12 ]", ["[3]", "[ 12 ]"]),
    ],
)
def test_each_kind_is_protected(text: str, expected: list[str]) -> None:
    assert [s.text for s in find_spans(text, GLOSSARY)] == expected


def test_spans_are_sorted_non_overlapping_and_point_into_the_text() -> None:
    for row in CORPUS:
        spans = find_spans(row["text"], GLOSSARY)
        for a, b in itertools.pairwise(spans):
            assert a.end <= b.start
        for s in spans:
            assert row["text"][s.start : s.end] == s.text


def test_ordinary_words_are_not_protected() -> None:
    text = "Nou bezwen ranfò nan wout la, c'est-à-dire tout de suite, follow-up ETA OK"
    assert find_spans(text, GLOSSARY) == []


def test_glossary_is_case_sensitive_whole_word_and_longest_first() -> None:
    glossary = Glossary.from_mapping(["Port", "Port-au-Prince", "MSS"])
    spans = find_spans("Port-au-Prince, Kenscoffville, mss, MSS, Port", glossary)
    assert [s.text for s in spans] == ["Port-au-Prince", "MSS", "Port"]
    assert [s.text for s in find_spans("Kenscoffville", GLOSSARY)] == []


def test_glossary_from_json_rejects_bad_terms() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Glossary.from_json('{"": {}}')
    with pytest.raises(ValueError, match="object or a list"):
        Glossary.from_json("42")


def test_glossaries_can_key_a_cache() -> None:
    a = Glossary.from_mapping({"PNH": {"en": "HNP"}, "Furcy": None})
    b = Glossary.from_mapping({"PNH": {"en": "HNP"}, "Furcy": {}})
    assert a == b
    assert hash(a) == hash(b)
    assert hash(default_glossary()) == hash(default_glossary())


# --- masking -----------------------------------------------------------------------------------


def _masked(text: str) -> Masked:
    return mask(text, find_spans(text, GLOSSARY))


def test_mask_numbers_placeholders_in_source_order() -> None:
    m = _masked("Inite KE-3 rive Kenscoff 14:30, bezwen ranfò")
    assert m.text == "Inite [0] rive [1] [2], bezwen ranfò"
    assert [s.text for s in m.spans] == ["KE-3", "Kenscoff", "14:30"]


def test_identity_output_restores_every_corpus_message_byte_identical() -> None:
    for row in CORPUS:
        m = _masked(row["text"])
        assert unmask(m.text, m, "en", GLOSSARY) == (row["text"], True)


_PLACEHOLDER = re.compile(r"\[(\d+)\]")


def _substitute(text: str, replacements: list[str]) -> str:
    """Replace the placeholders of ``text``, in order, by ``replacements``."""
    it = iter(replacements)
    return _PLACEHOLDER.sub(lambda _m: next(it), text)


def test_reordered_placeholders_are_accepted_and_each_span_restored() -> None:
    for row in CORPUS:
        m = _masked(row["text"])
        if len(m.spans) < 2:
            continue
        # A model reorders: reverse the placeholders' positions in the output.
        indices = [int(x) for x in _PLACEHOLDER.findall(m.text)]
        reordered = _substitute(m.text, [f"[{i}]" for i in reversed(indices)])
        restored, ok = unmask(reordered, m, "fr", GLOSSARY)
        assert ok
        assert restored == _substitute(m.text, [s.text for s in reversed(m.spans)])


@pytest.mark.parametrize("variant", ["[ {i} ]", "[{i} ]", "[ {i}]", "[{i}\u00a0]"])
def test_spacing_variants_models_emit_are_normalised(variant: str) -> None:
    m = _masked("Unit 3 at grid 18.5392,-72.3364, 2 wounded, need medevac")
    output = _PLACEHOLDER.sub(lambda x: variant.format(i=x.group(1)), m.text)
    assert unmask(output, m, "en") == (
        "Unit 3 at grid 18.5392,-72.3364, 2 wounded, need medevac",
        True,
    )


def _breakages(masked_text: str, n: int) -> list[tuple[str, str]]:
    """Ways a model breaks placeholders: (name, output)."""
    first = "[0]"
    return [
        ("dropped", masked_text.replace(first, "", 1)),
        ("duplicated", masked_text + " " + first),
        ("invented", masked_text + f" [{n}]"),
        ("mangled_letter", masked_text.replace(first, "[O]", 1)),
        ("mangled_bracket", masked_text.replace(first, "(0)", 1)),
        ("mangled_unclosed", masked_text.replace(first, "[0", 1)),
        ("bare_number", masked_text.replace(first, "0", 1)),
        ("all_gone", _PLACEHOLDER.sub("", masked_text)),
    ]


def test_dropped_duplicated_invented_or_mangled_placeholders_report_not_ok() -> None:
    checked = 0
    for row in CORPUS:
        m = _masked(row["text"])
        if not m.spans:
            continue
        for name, output in _breakages(m.text, len(m.spans)):
            _restored, ok = unmask(output, m, "sw", GLOSSARY)
            assert not ok, f"{name}: {row['text']!r} -> {output!r} was accepted"
            checked += 1
    assert checked >= 8 * 200


def test_user_written_placeholder_literal_is_not_confused_with_a_placeholder() -> None:
    text = "Gade pwen [0] ak [1] pou KE-3"
    m = _masked(text)
    assert m.text == "Gade pwen [0] ak [1] pou [2]"
    assert unmask("See item [0] and [1] for [2]", m, "en") == (
        "See item [0] and [1] for KE-3",
        True,
    )
    # Dropping the user's literal is caught like any other span.
    assert unmask("See item and [1] for [2]", m, "en")[1] is False


def test_underscored_callsigns_survive_a_decoder_that_turns_underscores_into_spaces() -> None:
    text = "Ekip Alpha_2 ak team_b pare, rele @KE_3_lead"
    m = _masked(text)
    # SentencePiece-style detokenisation: every `_` (and `▁`) becomes a space.
    decoded = m.text.replace("_", " ").replace("▁", " ")
    assert decoded == m.text  # nothing left for the decoder to break
    assert unmask(decoded, m, "en") == (text, True)


def test_glossary_renderings_apply_per_target_language_only() -> None:
    glossary = Glossary.from_mapping({"Port-au-Prince": {"ht": "Pòtoprens"}, "PNH": {}})
    text = "Convoy PNH left Port-au-Prince at 14:30"
    m = mask(text, find_spans(text, glossary))
    assert unmask(m.text, m, "ht", glossary) == ("Convoy PNH left Pòtoprens at 14:30", True)
    assert unmask(m.text, m, "fr", glossary) == (text, True)


def test_mask_rejects_spans_that_do_not_match_the_text() -> None:
    with pytest.raises(ValueError, match="does not match"):
        mask("abc", [Span(0, 2, "xx", "number")])
    with pytest.raises(ValueError, match="overlaps"):
        mask("KE-3 1", [Span(0, 4, "KE-3", "callsign"), Span(3, 4, "3", "number")])


def test_a_later_sentence_is_numbered_from_zero_and_mapped_back() -> None:
    text = "Unit KE-3 arrived. 2 wounded at 14:30."
    m = _masked(text)
    second = m.text.split(". ", 1)[1]
    assert second == "[1] wounded at [2]."
    local, numbers = number_locally(second)
    assert (local, numbers) == ("[0] wounded at [1].", (1, 2))
    # Reordered and spaced the way models write them, then back to the message's numbers.
    assert number_globally("Huko [ 1 ], majeruhi [0].", numbers) == "Huko [2], majeruhi [1]."
    restored, ok = unmask(m.text.split(". ", 1)[0] + ". [1] blese nan [2].", m, "ht")
    assert (restored, ok) == ("Unit KE-3 arrived. 2 blese nan 14:30.", True)


def test_an_invented_local_placeholder_stays_an_error_message_wide() -> None:
    m = _masked("Unit KE-3 arrived. 2 wounded.")
    _, numbers = number_locally("[1] wounded.")
    out = "Unit [0] arrived. " + number_globally("[0] wounded [1].", numbers)
    assert unmask(out, m, "en")[1] is False


# --- repair: translating around the spans ------------------------------------------------------


def test_repair_translates_text_between_spans_and_reinserts_spans_verbatim() -> None:
    text = "  Inite KE-3 rive Kenscoff 14:30, bezwen ranfò 🚨\n"
    m = _masked(text)
    pieces = split_around_spans(m)
    assert "".join(p if isinstance(p, str) else p.text for p in pieces) == text
    todo = texts_to_translate(pieces)
    # The separator after a span stays out of what the model sees ...
    assert todo == ["Inite", "rive", "bezwen ranfò"]
    # ... so a model that would drop or double it cannot: it is put back as written.
    translations = {"Inite": "Unit", "rive": "arrived in", "bezwen ranfò": ", need backup,"}
    rebuilt = join_pieces(pieces, [translations[t] for t in todo], "en", GLOSSARY)
    assert rebuilt == "  Unit KE-3 arrived in Kenscoff 14:30, need backup 🚨\n"


def test_repair_applies_glossary_renderings_and_checks_the_count() -> None:
    glossary = Glossary.from_mapping({"Port-au-Prince": {"ht": "Pòtoprens"}})
    text = "Leaving Port-au-Prince now"
    m = mask(text, find_spans(text, glossary))
    pieces = split_around_spans(m)
    assert join_pieces(pieces, ["Nou kite", "kounye a"], "ht", glossary) == (
        "Nou kite Pòtoprens kounye a"
    )
    with pytest.raises(ValueError, match="expected 2"):
        join_pieces(pieces, ["one"], "ht", glossary)


# --- bad input ---------------------------------------------------------------------------------

BAD = [
    "",
    "   \t\n ",
    "\ud800",
    "KE-3 \ud800 14:30 \udfff",
    "\x00\x01\x07 KE-3\x1b[31m 12 \x7f",
    "\u200b\u200c\u200d\u2060\ufeff",
    "\u202eKE-3 \u200f14:30\u202c",
    "مرحبا 12 KE-3 שלום",
    "[",
    "[[[[0]]]]",
    "@",
    "#",
    "+",
    "http://",
]


@pytest.mark.parametrize("text", BAD)
def test_bad_input_does_not_crash_and_round_trips(text: str) -> None:
    m = _masked(text)
    assert unmask(m.text, m, "en", GLOSSARY) == (text, True)


@pytest.mark.parametrize(
    "unit",
    # Each repeats a prefix of some pattern that a backtracking regex would rescan.
    [
        "A-1",
        "1.",
        "http://.",
        "a.",
        "+1 ",
        "[1",
        "👍🏽\u200d",
        "a_1-",
        "Nou rive Kenscoff 14:30, ",
    ],
)
def test_100k_characters_of_adversarial_input_complete(unit: str) -> None:
    # Linear-time patterns: a backtracking regex would not finish this in the test timeout.
    text = (unit * (100_000 // len(unit) + 1))[:100_000]
    m = _masked(text)
    restored, ok = unmask(m.text, m, "en", GLOSSARY)
    assert ok
    assert restored == text


@pytest.mark.parametrize("word", ["KRETYEN-VIVAN", "MBALI-MBALI", "FANMI-LI"])
def test_words_written_in_capitals_are_not_callsigns(word: str) -> None:
    assert find_spans(f"Nou jwenn {word} yo") == []


@pytest.mark.parametrize("unit", ["PNH-UDMO", "MSS-KE", "PNH-BLTS", "PNH-UDMO-2"])
def test_unit_acronyms_stay_callsigns(unit: str) -> None:
    assert [s.text for s in find_spans(f"Inite {unit} rive")] == [unit]
