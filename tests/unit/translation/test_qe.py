"""Quality estimation: critical content, output language, verdicts, reference sets, calibration."""

from __future__ import annotations

from pathlib import Path

import pytest

from translation.calibration import CalibrationBook, CalibrationError, Entry, Sample, derive
from translation.critical import LexiconError, Lexicons, changed
from translation.langid import detect
from translation.qe import CONSERVATIVE, assess, leaked_tag, round_trip_similarity
from translation.refset import ChangeSet, ParallelSet, RefSetError, parse
from translation.types import Flag, Verdict, verdict_of

LEX = Lexicons()
LANGS = ("en", "ht", "fr", "sw")


@pytest.mark.parametrize(
    ("src", "source", "tgt", "output", "kind"),
    [
        ("en", "Do not fire on the white truck.", "sw", "Fyatueni risasi lori jeupe.", "negation"),
        ("sw", "Msifyatue risasi.", "en", "Fire.", "negation"),
        ("ht", "Pa tire sou kamyon an.", "fr", "Tirez sur le camion.", "negation"),
        ("en", "Hold your position.", "fr", "Ne tenez pas votre position.", "negation"),
        ("en", "We counted twelve families.", "fr", "Nous avons compté deux familles.", "number"),
        ("en", "We counted twelve families.", "ht", "Nou konte de fanmi.", "number"),
        ("fr", "Douze familles.", "sw", "Familia kumi na moja.", "number"),
        ("en", "Avoid the north bridge.", "ht", "Evite pon sid la.", "direction"),
        ("sw", "Geukeni kushoto.", "en", "Turn right.", "direction"),
    ],
)
def test_a_lost_or_added_critical_word_is_a_changed_meaning(
    src: str, source: str, tgt: str, output: str, kind: str
) -> None:
    assert kind in changed(source, src, output, tgt, LEX)


@pytest.mark.parametrize(
    ("src", "source", "tgt", "output"),
    [
        ("en", "We counted twelve families.", "ht", "Nou konte douz fanmi."),
        ("en", "We counted twelve families.", "sw", "Tumehesabu familia kumi na mbili."),
        ("ht", "Pa tire sou kamyon blan an.", "sw", "Msifyatue risasi lori jeupe."),
        ("fr", "Personne n'a été blessé.", "ht", "Pèsonn pa blese."),
        # Ambiguous words confirm the other side but never flag alone.
        ("en", "See the map.", "ht", "Gade kat la."),
        ("ht", "Prizonye a sove pa fenèt la.", "en", "The prisoner escaped by the window."),
        ("en", "Send the list before noon.", "sw", "Tumeni orodha kabla ya saa sita mchana."),
        ("en", "The patrol left at 0600.", "fr", "La patrouille est partie à 0600."),
        ("sw", "Kizuizi kitafungwa usiku.", "en", "The checkpoint closes tonight."),
    ],
)
def test_faithful_translations_keep_their_critical_content(
    src: str, source: str, tgt: str, output: str
) -> None:
    assert changed(source, src, output, tgt, LEX) == ()


def test_operators_extend_the_lexicons_with_a_directory(tmp_path: Path) -> None:
    (tmp_path / "en.tsv").write_text("num:12\tdozen\nneg\tnegative\n", encoding="utf-8")
    (tmp_path / "fr.tsv").write_text("neg\tnégatif\n", encoding="utf-8")
    extended = Lexicons(tmp_path)
    assert changed("Negative, hold.", "en", "Tenez.", "fr", extended) == ("negation",)
    assert changed("Negative, hold.", "en", "Négatif, tenez.", "fr", extended) == ()
    assert changed("Negative, hold.", "en", "Tenez.", "fr", LEX) == ()


def test_a_bad_lexicon_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "en.tsv").write_text("neg\tnot\nnumber twelve\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"en\.tsv line 2"):
        Lexicons(tmp_path).get("en")


def test_leaked_language_tags_are_caught() -> None:
    assert leaked_tag("swh_Latn Kikosi kimefika")
    assert leaked_tag("__sw__ Kikosi")
    assert not leaked_tag("Kikosi KE-3 kimefika Kenscoff")


def test_round_trip_ignores_protected_spans_and_tiny_sources() -> None:
    # Nonsense that keeps the placeholders must not look similar because of them.
    assert round_trip_similarity("Unit [0] arrived at [1].", "Need [0] fuel [1] now.") < 30
    assert round_trip_similarity("Unit [0] arrived at [1].", "Unit [0] arrived at [1].") == 100
    assert round_trip_similarity("[0] [1]", "[0] [1]") is None


def _assess(**kw: object) -> list[Flag]:
    args: dict[str, object] = {
        "source": "Hold your position.",
        "source_lang": "en",
        "output": "Tenez votre position.",
        "target_lang": "fr",
        "score": 0.9,
        "round_trip": 100.0,
        "thresholds": CONSERVATIVE,
        "lexicons": LEX,
        "detect": detect,
    }
    args.update(kw)
    return assess(**args)  # type: ignore[arg-type]


def test_verdicts_combine_the_checks() -> None:
    assert verdict_of(_assess()) is Verdict.OK
    assert Flag.UNCALIBRATED in _assess()  # said, not held against the copy
    assert verdict_of(_assess(round_trip=40.0)) is Verdict.DOUBTFUL
    assert verdict_of(_assess(round_trip=10.0)) is Verdict.UNUSABLE
    assert verdict_of(_assess(score=0.1)) is Verdict.UNUSABLE
    assert verdict_of(_assess(output="Ne tenez pas votre position.")) is Verdict.DOUBTFUL
    # The output in another language than the target.
    flags = _assess(output="Rete nan pozisyon ou pandan n ap tann lòd yo.")
    assert Flag.WRONG_LANGUAGE in flags


def test_two_independent_doubts_make_a_copy_unusable() -> None:
    assert verdict_of([Flag.LOW_CONFIDENCE]) is Verdict.DOUBTFUL
    assert verdict_of([Flag.LOW_CONFIDENCE, Flag.ROUND_TRIP_DIFFERENT]) is Verdict.UNUSABLE
    assert verdict_of([Flag.NO_MODEL]) is Verdict.UNUSABLE
    assert verdict_of([Flag.ROUND_TRIP_SIMILAR, Flag.TRUNCATED_INPUT]) is Verdict.OK


def test_a_transcript_is_judged_by_its_translation_not_by_coming_from_speech() -> None:
    # A voice note's transcript carries its own "check numbers and callsigns" line: being
    # spoken does not make a good translation doubtful, nor spare a bad one its warning.
    assert verdict_of([Flag.FROM_SPEECH]) is Verdict.OK
    assert verdict_of([Flag.FROM_SPEECH, Flag.LOW_CONFIDENCE]) is Verdict.DOUBTFUL
    assert verdict_of([Flag.FROM_SPEECH, Flag.NO_MODEL]) is Verdict.UNUSABLE


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "line 1: expected a header"),
        (["en\tklingon"], "line 1: 'klingon' is not a language code"),
        (["en\txx"], "line 1: unknown language 'xx'"),
        (["en\ten"], "line 1: a language appears twice"),
        (["en"], "line 1: at least two language columns"),
        (["en\tfr", "Hello.\tBonjour.", "", "Yes.\tOui."], "line 3: empty line"),
        (["en\tfr", "Hello.\tBonjour.", "Yes."], "line 3: 1 columns, the header has 2"),
        (["en\tfr", "Hello.\t "], "line 2: column 2 is empty"),
        (["en\tfr"], "no sentences after the header"),
        (
            ["source_lang\tsource\ttarget_lang\tcandidate\tchange", "en\tNo.\tzz\tNon.\tneg"],
            "line 2: unknown language 'zz'",
        ),
    ],
)
def test_a_bad_reference_set_gets_one_error_naming_the_line(
    lines: list[str], message: str
) -> None:
    with pytest.raises(RefSetError, match=message):
        parse(lines, LANGS, name="set.tsv")


def test_reference_sets_of_both_kinds_are_read() -> None:
    parallel = parse(["en\tfr", "Hello.\tBonjour."], LANGS, name="p")
    assert isinstance(parallel, ParallelSet)
    assert parallel.pairs() == [("en", "fr"), ("fr", "en")]
    changes = parse(
        ["source_lang\tsource\ttarget_lang\tcandidate\tchange", "en\tNo.\tfr\tOui.\tnegation"],
        LANGS,
        name="c",
    )
    assert isinstance(changes, ChangeSet)
    assert changes.changes[0].line == 2


def test_calibration_sets_bars_from_the_models_good_translations() -> None:
    good = [Sample(0.8 + i / 1000, 90.0 + i / 10, 95.0) for i in range(50)]
    thresholds, count = derive(good)
    assert count == 50
    assert thresholds.calibrated
    assert 0.7 < thresholds.ok_score < 0.8  # just under the good ones
    assert thresholds.unusable_score == pytest.approx(thresholds.ok_score / 2)
    # Poor translations that are confident but do not round-trip raise the round-trip bar.
    poor = [Sample(0.85, 40.0 + i / 10, 30.0) for i in range(30)]
    near_misses = [Sample(0.85, 50.0 + i / 10, 65.0) for i in range(10)]
    raised, _ = derive(good + poor + near_misses)
    assert raised.ok_round_trip > 43


def test_calibration_refuses_a_model_with_too_few_good_translations() -> None:
    with pytest.raises(CalibrationError, match="only 5 of 40"):
        derive([Sample(0.9, 90.0, 90.0)] * 5 + [Sample(0.2, 10.0, 10.0)] * 35)


def test_a_calibration_no_longer_applies_once_its_model_changed(tmp_path: Path) -> None:
    book = CalibrationBook(tmp_path)
    thresholds, _ = derive([Sample(0.8, 90.0, 95.0)] * 30)
    book.store([Entry("ht-en", ("m1",), ("abc",), thresholds, 30, "set.tsv", "now")])
    again = CalibrationBook(tmp_path)
    assert again.thresholds("ht", "en", ["m1"], ["abc"]) == thresholds
    assert again.thresholds("ht", "en", ["m1"], ["changed"]) is CONSERVATIVE
    assert again.calibrated_models() == {"m1": ["ht-en"]}
    again.forget("m1")
    assert CalibrationBook(tmp_path).thresholds("ht", "en", ["m1"], ["abc"]) is CONSERVATIVE
