"""Language identification on short operational messages, with and without chat priors."""

from __future__ import annotations

import csv
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import translation.langid as langid
from translation.errors import UnsupportedLanguage
from translation.langid import UNCERTAIN_BELOW, detect

DATA = Path(__file__).resolve().parents[2] / "data"


def _rows() -> list[dict[str, str]]:
    with (DATA / "langid.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = _rows()


def _accuracy(
    rows: list[dict[str, str]], *, priors: bool
) -> tuple[float, dict[str, float], list[str]]:
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    misses = []
    for row in rows:
        chat = (row["chat_lang_prior"],) if priors and row["chat_lang_prior"] else ()
        guess = detect(row["text"], chat_languages=chat)
        totals[row["lang"]] += 1
        if guess.language == row["lang"]:
            hits[row["lang"]] += 1
        else:
            misses.append(f"{row['text']!r} ({row['lang']}, chat {chat}) -> {guess}")
    per_lang = {lang: hits[lang] / totals[lang] for lang in totals}
    return sum(hits.values()) / len(rows), per_lang, misses


def _classifiable(row: dict[str, str]) -> bool:
    """Rows that carry words (not only numbers, callsigns, emoji): the classifier can judge."""
    return detect(row["text"]).decided_by != "default"


def test_labelled_set_has_200_short_messages_in_four_languages() -> None:
    by_lang = Counter(row["lang"] for row in ROWS)
    assert len(ROWS) >= 200
    assert set(by_lang) == {"ht", "fr", "en", "sw"}
    assert min(by_lang.values()) >= 50
    short = [r for r in ROWS if len(r["text"].split()) <= 3]
    assert len(short) >= 100  # two- and three-word replies dominate real traffic


def test_accuracy_without_priors(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [r for r in ROWS if _classifiable(r)]
    total, per_lang, misses = _accuracy(rows, priors=False)
    with capsys.disabled():
        print(
            f"\nlangid without priors: {total:.1%} of {len(rows)} messages with words; {per_lang}"
        )
    # Measured 96.7% (295/305); the misses are one-word prowords ("Wilco", "Affirmative")
    # and colloquial Swahili ("Poa", "Shwari"), which the chat prior settles.
    assert total >= 0.95, "\n".join(misses)


def test_accuracy_with_chat_priors(capsys: pytest.CaptureFixture[str]) -> None:
    total, per_lang, misses = _accuracy(ROWS, priors=True)
    with capsys.disabled():
        print(f"\nlangid with chat priors: {total:.1%} of {len(ROWS)} messages; {per_lang}")
    # Measured 99.4% (317/319); the two misses have no prior in the set.
    assert total >= 0.98, "\n".join(misses)
    assert min(per_lang.values()) >= 0.95, per_lang


def test_two_word_kreyol_in_a_kreyol_group_is_not_called_french() -> None:
    assert detect("Se bon").language == "fr"  # what the classifier alone says
    guess = detect("Se bon", chat_languages=("ht",))
    assert (guess.language, guess.decided_by) == ("ht", "prior:chat")


@pytest.mark.parametrize(
    ("text", "chat", "lang"),
    [
        ("Bien reçu", "ht", "fr"),
        ("Copy that", "sw", "en"),
        ("Thanks", "sw", "en"),
        ("Asante sana", "en", "sw"),
        ("Mèsi anpil", "fr", "ht"),
        ("Nous sommes arrivés à Kenscoff", "ht", "fr"),
        ("Majeruhi wawili, tunahitaji gari la wagonjwa", "en", "sw"),
    ],
)
def test_clear_evidence_beats_the_chat_prior(text: str, chat: str, lang: str) -> None:
    guess = detect(text, chat_languages=(chat,))
    assert guess.language == lang
    assert guess.decided_by == "classifier"


@pytest.mark.parametrize(
    ("text", "lang"), [("M la", "ht"), ("Wi", "ht"), ("Mesi", "ht"), ("Asante sana", "sw")]
)
def test_function_words_settle_replies_the_classifier_alone_gets_wrong(
    text: str, lang: str
) -> None:
    # Without the function-word lists the classifier says fr, en, en and ht respectively.
    assert detect(text).language == lang


def test_author_prior_decides_when_the_chat_has_none() -> None:
    guess = detect("Wilco", author_language="en")
    assert (guess.language, guess.decided_by) == ("en", "prior:author")


def test_chat_prior_outweighs_author_prior_on_ambiguous_text() -> None:
    assert detect("Se bon", chat_languages=("ht",), author_language="fr").language == "ht"


@pytest.mark.parametrize(
    "text", ["14:30", "KE-3", "👍", "+509 3712 3456", "OK", "🚨🚨 18.5392,-72.3364"]
)
def test_text_without_words_takes_the_prior_with_low_confidence(text: str) -> None:
    guess = detect(text, chat_languages=("sw",))
    assert (guess.language, guess.decided_by) == ("sw", "prior:chat")
    assert guess.confidence < langid.UNCERTAIN_BELOW
    guess = detect(text, author_language="fr")
    assert (guess.language, guess.decided_by) == ("fr", "prior:author")
    guess = detect(text)
    assert guess.decided_by == "default"
    assert guess.confidence == 0.0


def test_place_names_do_not_vote() -> None:
    # "Kenscoff" alone says nothing about the language: the prior decides.
    assert detect("Kenscoff", chat_languages=("en",)).decided_by == "prior:chat"


def test_confident_on_clear_sentences() -> None:
    guess = detect("Inite KE-3 rive Kenscoff 14:30, bezwen ranfò")
    assert (guess.language, guess.decided_by) == ("ht", "classifier")
    assert guess.confidence > 0.9


def test_candidates_restrict_the_answer() -> None:
    assert detect("Copy that, moving out now", candidates=("ht", "fr")).language in {"ht", "fr"}
    assert detect("anything", candidates=("sw",)).language == "sw"


def test_chat_languages_outside_the_candidates_are_ignored() -> None:
    assert detect("14:30", candidates=("ht", "fr"), chat_languages=("en",)).decided_by == "default"


@pytest.mark.parametrize("candidates", [("ht", "xx"), ()])
def test_unknown_candidates_raise_a_typed_error(candidates: tuple[str, ...]) -> None:
    with pytest.raises(UnsupportedLanguage):
        detect("Nou rive", candidates=candidates)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t",
        "\ud800",
        "Nou rive \udfff Kenscoff",
        "\x00\x01\x1b[31m Nou rive \x7f",
        "\u200b\u200d\ufeff",
        "\u202eNou rive\u202c \u200fKenscoff",
        "مرحبا بكم",
        "Nou rive Kenscoff 14:30, bezwen ranfò. " * 2600,  # ~100,000 characters
        "a" * 100_000,
    ],
)
def test_bad_input_gives_a_guess(text: str) -> None:
    guess = detect(text, chat_languages=("ht",))
    assert guess.language in {"ht", "fr", "en", "sw"}
    assert 0.0 <= guess.confidence <= 1.0


def test_long_kreyol_text_is_still_kreyol() -> None:
    assert detect("Nou rive Kenscoff 14:30, bezwen ranfò. " * 2600).language == "ht"


def test_classifier_loads_once_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from py3langid.langid import LanguageIdentifier

    loads: list[int] = []
    real = LanguageIdentifier.from_model_file.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, *args: Any, **kwargs: Any) -> Any:
        loads.append(1)
        time.sleep(0.05)  # widen the race window
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", classmethod(counting))
    classifier = langid._Classifier()
    results: dict[int, dict[str, float]] = {}
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = classifier.scores("Nou rive Kenscoff", ("ht", "fr"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len({tuple(sorted(r.items())) for r in results.values()}) == 1


def test_no_model_is_loaded_until_first_use() -> None:
    assert langid._Classifier()._identifier is None


@pytest.mark.parametrize(
    ("text", "chat", "lang"),
    [
        ("The bus driver", "fr", "en"),
        ("Water distribution is", "fr", "en"),
        ("Le prisonnier a", "ht", "fr"),
        ("Twati komisarya a", "sw", "ht"),
    ],
)
def test_a_wrong_chat_prior_does_not_override_confident_evidence(
    text: str, chat: str, lang: str
) -> None:
    assert detect(text).language == lang
    assert detect(text, chat_languages=(chat,)).language == lang


@pytest.mark.parametrize(
    ("text", "wrong"), [("Mande chofè", "fr"), ("Fuel prices", "fr"), ("Lori la", "ht")]
)
def test_a_wrong_two_word_answer_is_marked_uncertain(text: str, wrong: str) -> None:
    guess = detect(text)
    assert guess.language == wrong  # the classifier alone cannot tell from two words...
    assert guess.confidence < UNCERTAIN_BELOW  # ...and says so
