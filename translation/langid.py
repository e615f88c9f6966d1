"""Offline language identification for short operational messages (ht, fr, en, sw).

The classifier is py3langid's bundled naive Bayes model (numpy only), loaded lazily once and
read-only afterwards, so concurrent calls need no lock once it is loaded. Its raw scores are
restricted to the candidate languages, nudged by a few function words that tell Kreyòl from
French (and the other pairs) apart, scaled to probabilities, and then combined with priors:
the chat's language(s) and the author's language. Priors decide short, ambiguous messages
("Wi", "ETA 15 minutes" in an English group) but do not override clear evidence ("Bien reçu"
in a Kreyòl group stays French): text-only evidence at CLEAR_EVIDENCE or above is never
overridden. The confidence of a text of one to three words is shrunk towards chance, so that
wrong short answers are reported uncertain.

What carries no language (numbers, times, callsigns, coordinates, URLs, emoji, place names,
"ok") is removed before classifying; a message made only of those gets the prior with a low
confidence (``decided_by="prior:chat"``, ``"prior:author"``, or ``"default"`` with none).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

from translation.errors import UnsupportedLanguage
from translation.glossary import default_glossary
from translation.spans import Glossary, find_spans
from translation.types import LANGUAGES, LanguageGuess

# Log-odds added to a language the chat is known to write in, and to the author's language.
# Chosen from tests/data/langid.tsv: large enough to settle one- and two-word replies the
# classifier is unsure about, small enough that a clear two-word French reply ("Bien reçu")
# in a Kreyòl group is still French (see test_langid.py for the measured margins).
CHAT_PRIOR = 2.0
AUTHOR_PRIOR = 1.0
# Evidence this sure (probability from the text alone) is not overridden by a prior.
CLEAR_EVIDENCE = 0.8
# Words of no information added when stating the confidence of a text of at most
# SHORT_TEXT_WORDS words: 2 words at raw 0.66 -> 0.52 (see _shrunk). Longer texts keep theirs.
SHORT_TEXT_PSEUDO_WORDS = 1.0
SHORT_TEXT_WORDS = 3
# Raw log-likelihood added per function word that only one candidate language uses.
MARKER_BONUS = 3.0
# Confidence reported when only a prior decided (the text carried no language at all).
PRIOR_ONLY_CONFIDENCE = 0.3
# Below this, callers should treat the language as uncertain (e.g. flag the translation).
UNCERTAIN_BELOW = 0.5
# Language is settled long before this; classifying more only costs time.
_MAX_CLASSIFIED_CHARS = 4000

# Words with no language: radio and chat acknowledgements used by every side.
_NEUTRAL_WORDS = frozenset({"ok", "okay", "oke", "oké", "okey", "roger", "rodger"})


# High-precision function words: common in one candidate language, absent (as written) from
# the others. Content words are deliberately left to the classifier.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_MARKERS: dict[str, frozenset[str]] = {
    "ht": _words(
        "mwen nou yo pa ki nan bezwen gen rive ap kounye kounya wi pou yon kote lè konnen "
        "tann anpil ankò moun sou ak avèk pral pap kilè mèsi mesi byen fè sa ye k w m n"
    ),
    "fr": _words(
        "je nous vous est sommes êtes avons les des du au aux une dans pour avec pas reçu "
        "merci oui ce cette il elle ils mais très où à été ça qu c d l s j y"
    ),
    "en": _words(
        "the is are we you at in to of and for with from our this that need yes not all "
        "will have has sir please"
    ),
    "sw": _words(
        "na ya wa kwa ni za cha vya tuko niko yuko iko sawa asante ndiyo hapana bado sana "
        "tafadhali hakuna kuna saa afande kesho sasa tayari wote kila"
    ),
}
# Words listed for two languages (e.g. "pour"/"pou" are distinct, but "l" is French and a
# Kreyòl pronoun) count for neither; computed once here from the constant lists above.
_AMBIGUOUS = frozenset(
    w
    for lang, words in _MARKERS.items()
    for w in words
    if any(w in other for o, other in _MARKERS.items() if o != lang)
)

_NO_EVIDENCE = -1e30
_WORD = re.compile(r"[^\W\d_]+")
_INVISIBLE = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Classifier:
    """py3langid's model, loaded on first use (once, under a lock) and then only read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._identifier: Any = None

    def _get(self) -> Any:
        identifier = self._identifier
        if identifier is None:
            with self._lock:
                if self._identifier is None:
                    from py3langid.langid import MODEL_FILE, LanguageIdentifier

                    # Our own instance: py3langid's module-level one is mutated by its
                    # set_languages(), which would race between threads.
                    self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
                identifier = self._identifier
        return identifier

    def labels(self) -> frozenset[str]:
        """Languages the model knows."""
        return frozenset(self._get().labels)

    def scores(self, text: str, candidates: Sequence[str]) -> dict[str, float]:
        """Raw naive Bayes log-scores of ``text`` for each candidate language."""
        ranked = self._get().rank(text)
        wanted = set(candidates)
        # A text with no known n-gram scores the float32 floor for every language; call that
        # "no evidence" (0) so markers and priors can still decide.
        return {
            lang: (float(score) if score > _NO_EVIDENCE else 0.0)
            for lang, score in ranked
            if lang in wanted
        }


_CLASSIFIER = _Classifier()


def _content(text: str, glossary: Glossary) -> str:
    """The text with everything that carries no language replaced by spaces."""
    text = _SURROGATE.sub(" ", text[: _MAX_CLASSIFIED_CHARS * 2])
    text = unicodedata.normalize("NFC", _INVISIBLE.sub(" ", text))
    parts: list[str] = []
    pos = 0
    for span in find_spans(text, glossary):
        parts.append(text[pos : span.start])
        parts.append(" ")
        pos = span.end
    parts.append(text[pos:])
    words = [w for w in " ".join(parts).split() if w.lower().strip(".,;:!?") not in _NEUTRAL_WORDS]
    return " ".join(words)[:_MAX_CLASSIFIED_CHARS]


def _softmax(logits: dict[str, float]) -> dict[str, float]:
    top = max(logits.values())
    exp = {k: math.exp(v - top) for k, v in logits.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def _validated(candidates: Sequence[str]) -> tuple[str, ...]:
    cands = tuple(dict.fromkeys(candidates))
    if not cands:
        raise UnsupportedLanguage("no candidate languages given; pass e.g. ('ht','fr','en','sw')")
    unknown = [c for c in cands if c not in LANGUAGES and c not in _CLASSIFIER.labels()]
    if unknown:
        raise UnsupportedLanguage(
            f"language identification does not know {', '.join(unknown)}; "
            f"use codes among {', '.join(LANGUAGES)}"
        )
    return cands


def detect(
    text: str,
    *,
    candidates: Sequence[str] = LANGUAGES,
    chat_languages: Sequence[str] = (),
    author_language: str | None = None,
    glossary: Glossary | None = None,
) -> LanguageGuess:
    """Guess the language of ``text`` among ``candidates``, using chat and author priors."""
    cands = _validated(candidates)
    chat = [c for c in chat_languages if c in cands]
    author = author_language if author_language in cands else None
    if len(cands) == 1:
        return LanguageGuess(cands[0], "only-candidate", 1.0)

    content = _content(text, glossary if glossary is not None else default_glossary())
    words = _WORD.findall(content.lower())
    if sum(len(w) for w in words) < 2 or not any(_is_latin(w) for w in words):
        if chat:
            return LanguageGuess(chat[0], "prior:chat", PRIOR_ONLY_CONFIDENCE)
        if author is not None:
            return LanguageGuess(author, "prior:author", PRIOR_ONLY_CONFIDENCE)
        return LanguageGuess(cands[0], "default", 0.0)

    raw = _CLASSIFIER.scores(content, cands)
    for word in words:
        if word in _AMBIGUOUS:
            continue
        for lang in cands:
            if word in _MARKERS.get(lang, ()):
                raw[lang] += MARKER_BONUS
    # py3langid's own calibration: a temperature of sqrt(bytes) keeps probabilities
    # comparable between a two-word reply and a paragraph.
    temperature = math.sqrt(max(len(content.encode("utf-8", "surrogatepass")), 1))
    logits = {lang: score / temperature for lang, score in raw.items()}
    evidence_best = max(logits, key=logits.__getitem__)

    evidence = _softmax(logits)
    # Clear evidence is not overridden by a prior: priors settle what the text leaves open.
    if evidence[evidence_best] < CLEAR_EVIDENCE:
        for lang in chat:
            logits[lang] += CHAT_PRIOR
        if author is not None:
            logits[author] += AUTHOR_PRIOR
    probs = _softmax(logits)
    best = max(probs, key=probs.__getitem__)
    if best == evidence_best:
        decided_by = "classifier"
    elif best in chat:
        decided_by = "prior:chat"
    else:
        decided_by = "prior:author"
    return LanguageGuess(best, decided_by, round(_shrunk(probs[best], len(words), cands), 3))


def _shrunk(probability: float, words: int, candidates: Sequence[str]) -> float:
    """A confidence no higher than the words behind it support: one or two words are weak
    evidence whatever the scores say, so the probability is pulled towards "any candidate"
    as if SHORT_TEXT_PSEUDO_WORDS more words had carried no information."""
    if words > SHORT_TEXT_WORDS:
        return probability
    chance = 1.0 / len(candidates)
    return (probability * words + chance * SHORT_TEXT_PSEUDO_WORDS) / (
        words + SHORT_TEXT_PSEUDO_WORDS
    )


def _is_latin(word: str) -> bool:
    """Whether a word is written in Latin script (all candidate languages are)."""
    return "LATIN" in unicodedata.name(word[0], "")


def warm_up() -> None:
    """Load the classifier now (e.g. at start-up) instead of on the first message."""
    _CLASSIFIER.labels()
